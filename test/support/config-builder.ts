/**
 * @module
 * Configuration documents for tests: a gateway on `example.test` with services given by name and
 * replica URLs; every other field takes the control plane's defaults unless overridden.
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY } from "../../schema/observability.ts";

export const DOMAIN = "example.test";

export interface ServiceSpec extends Partial<Omit<ConfigService, "replicas">> {
  name: string;
  /** Replica URLs; ids are `<service>-<index>` unless given as `{id, url}` (with a PD `role`, `bootstrap_port`). */
  replicas: (string | ConfigService["replicas"][number])[];
}

export function service(spec: ServiceSpec): ConfigService {
  const { name, replicas, ...rest } = spec;
  return {
    name,
    project: "main",
    host: `${name}.${DOMAIN}`,
    https: false,
    hsts: null,
    auth: false,
    client_max_body_size: 64 * 1024 * 1024,
    read_timeout_ms: 300_000,
    rate_limits: [],
    model: null,
    router: null,
    usage: "as_requested",
    hold: null,
    ...rest,
    replicas: replicas.map((r, i) => (typeof r === "string" ? { id: `${name}-${i}`, url: r } : r)),
  };
}

export function configDocument(version: number, services: ServiceSpec[]): ConfigDocument {
  return {
    version,
    gateway: { id: "gw-1", name: "edge", project: "main", domain: DOMAIN, router: null },
    services: services.map(service),
    entrypoint: { host: `gateway.${DOMAIN}` },
    service_tokens: [],
    acme: null,
    observability: DEFAULT_OBSERVABILITY,
    generated_at: new Date(0).toISOString(),
  };
}
