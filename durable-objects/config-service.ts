/**
 * @module
 * A stored service → its entry in the configuration document. Pure (no storage), so the test that
 * every service the schema accepts is accepted by the agent (`test/node/config-bounds.test.ts`)
 * runs this very code.
 */
import type { ConfigService } from "../schema/config-document.ts";
import { type GatewayConfiguration, interpolateDomain } from "../schema/gateway.ts";
import { healthDocument } from "../schema/health.ts";
import { holdTimeoutSeconds, type ServiceConfiguration } from "../schema/service.ts";

/** What of a gateway the document's services depend on. */
export interface GatewayForDocument {
  project_name: string;
  configuration: Pick<GatewayConfiguration, "domain" | "certificate" | "router">;
}

/** The gateway's wildcard domain for this project, or null (services then cannot be reached). */
export const gatewayDomain = (g: GatewayForDocument): string | null =>
  g.configuration.domain ? interpolateDomain(g.configuration.domain, g.project_name) : null;

/** dstack's rule: `https: auto` follows the certificate; ACM terminates TLS at the load balancer. */
export function serviceScheme(g: GatewayForDocument, s: ServiceConfiguration): "https" | "http" {
  const https = s.https === "auto" ? g.configuration.certificate !== null : s.https;
  return https ? "https" : "http";
}

/** `hsts: true` is a year (the common preload minimum); a mapping says its own. */
function hstsOf(c: ServiceConfiguration): ConfigService["hsts"] {
  if (!c.hsts) return null;
  if (c.hsts === true) return { max_age: 31_536_000, include_subdomains: false };
  return { max_age: c.hsts.max_age, include_subdomains: c.hsts.include_subdomains };
}

export function configService(
  g: GatewayForDocument,
  domain: string,
  s: { name: string; configuration: ServiceConfiguration },
  replicas: ConfigService["replicas"],
): ConfigService {
  const c = s.configuration;
  return {
    name: s.name,
    project: g.project_name,
    host: `${s.name}.${domain}`.toLowerCase(),
    https: serviceScheme(g, c) === "https" && g.configuration.certificate?.type === "lets-encrypt",
    hsts: hstsOf(c),
    auth: c.auth,
    client_max_body_size: c.client_max_body_size,
    read_timeout_ms: Math.round(c.read_timeout * 1000),
    rate_limits: c.rate_limits,
    model: c.model ? { name: c.model.name, format: c.model.format, prefix: c.model.prefix } : null,
    router: c.router ?? g.configuration.router,
    replicas,
    usage: c.usage,
    engine: c.engine ?? null,
    health: healthDocument(
      c.health,
      c.model !== null || (c.router ?? g.configuration.router) !== null || (c.engine ?? "none") !== "none",
    ),
    hold: hold(c),
    // Retries and admission control (proxy/admission/).
    retries: c.retries ?? null,
    admission: c.admission
      ? {
          max_concurrency: c.admission.max_concurrency,
          queue_size: c.admission.queue_size,
          queue_timeout_ms: Math.round(c.admission.queue_timeout * 1000),
          priority_header: c.admission.priority_header,
        }
      : null,
  };
}

/** A service that scales to zero (with `scaling`, or per role): how long the proxy holds a request. */
function hold(c: ServiceConfiguration): { timeout_ms: number } | null {
  const seconds = holdTimeoutSeconds(c);
  return seconds === null ? null : { timeout_ms: Math.round(seconds * 1000) };
}
