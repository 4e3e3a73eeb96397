/**
 * @module
 * The versioned configuration document a gateway's agents serve: the gateway, its services (each
 * built by `config-service.ts`), the project's service tokens, the ACME settings and what the hosts
 * export of their traffic (`observability`). Built from the
 * object's storage at each push or pull; the version is the gateway's `config_version`.
 */
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { configService, gatewayDomain } from "./config-service.ts";
import type { ServiceStore } from "./service-store.ts";
import type { GatewayRow } from "./state.ts";

/** `acme` is derived by the caller from the gateway and its project's ACME settings (`project-acme.ts`). */
export function buildConfigDocument(g: GatewayRow, store: ServiceStore, acme: ConfigDocument["acme"]): ConfigDocument {
  const domain = gatewayDomain(g);
  const replicas = store.replicas();
  const services: ConfigService[] = domain
    ? store.list().map((s) =>
        configService(
          g,
          domain,
          s,
          replicas
            .filter((r) => r.service === s.name)
            // Role and bootstrap port only when set: co-located replicas look as they always did.
            .map((r) => ({
              id: r.id,
              url: r.url,
              ...(r.role ? { role: r.role } : {}),
              ...(r.bootstrap_port != null ? { bootstrap_port: r.bootstrap_port } : {}),
            })),
        ),
      )
    : [];
  return {
    version: g.config_version,
    gateway: {
      id: g.id,
      name: g.name,
      project: g.project_name,
      domain,
      router: g.configuration.router,
    },
    services,
    entrypoint: domain ? { host: `gateway.${domain}` } : null,
    service_tokens: store.serviceTokens(),
    acme,
    observability: g.configuration.observability,
    generated_at: new Date().toISOString(),
  };
}
