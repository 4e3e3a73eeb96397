/**
 * @module
 * The versioned configuration document a gateway's agents serve: the gateway, its services (each
 * built by `config-service.ts`), the project's service tokens, the ACME settings and what the hosts
 * export of their traffic (`observability`). Built from the object's storage for a connect, an old
 * agent or one too far behind; agents that are up to date get deltas (`config-delta.ts`) built from
 * the same pieces. The version is the gateway's `config_version`.
 */

import type { ConfigHead } from "../schema/config-delta.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { configService, gatewayDomain } from "./config-service.ts";
import type { ServiceReplicaRow, ServiceRow, ServiceStore } from "./service-store.ts";
import type { GatewayRow } from "./state.ts";

/** The document's replicas of one service: role and bootstrap port only when set (co-located replicas look as they always did). */
function documentReplicas(rows: ServiceReplicaRow[]): ConfigService["replicas"] {
  return rows.map((r) => ({
    id: r.id,
    url: r.url,
    ...(r.role ? { role: r.role } : {}),
    ...(r.bootstrap_port != null ? { bootstrap_port: r.bootstrap_port } : {}),
  }));
}

/** Replica rows by service, in one pass (the rows keep their order). */
function byService(rows: ServiceReplicaRow[]): Map<string, ServiceReplicaRow[]> {
  const out = new Map<string, ServiceReplicaRow[]>();
  for (const r of rows) {
    const list = out.get(r.service);
    if (list) list.push(r);
    else out.set(r.service, [r]);
  }
  return out;
}

/** The document's entries of `services`, given (at least) their replica rows. */
export function serviceEntries(g: GatewayRow, services: ServiceRow[], replicas: ServiceReplicaRow[]): ConfigService[] {
  const domain = gatewayDomain(g);
  if (!domain) return [];
  const grouped = byService(replicas);
  return services.map((s) => configService(g, domain, s, documentReplicas(grouped.get(s.name) ?? [])));
}

/** One service's entry, as the document carries it now (its replicas only). */
export function serviceEntry(g: GatewayRow, store: ServiceStore, s: ServiceRow): ConfigService {
  const domain = gatewayDomain(g) ?? "";
  return configService(g, domain, s, documentReplicas(store.replicas(s.name)));
}

/** Bytes of an entry in the document (what the document size limit counts). */
export const entryBytes = (entry: ConfigService): number => new TextEncoder().encode(JSON.stringify(entry)).length;

/** The document's envelope: everything but its version and services. */
export function configHead(g: GatewayRow, store: ServiceStore, acme: ConfigDocument["acme"]): ConfigHead {
  const domain = gatewayDomain(g);
  return {
    gateway: {
      id: g.id,
      name: g.name,
      project: g.project_name,
      domain,
      router: g.configuration.router,
    },
    entrypoint: domain ? { host: `gateway.${domain}` } : null,
    service_tokens: store.serviceTokens(),
    acme,
    observability: g.configuration.observability,
    generated_at: new Date().toISOString(),
  };
}

/** `acme` is derived by the caller from the gateway and its project's ACME settings (`project-acme.ts`). */
export function buildConfigDocument(g: GatewayRow, store: ServiceStore, acme: ConfigDocument["acme"]): ConfigDocument {
  const head = configHead(g, store, acme);
  const services = serviceEntries(g, store.list(), store.replicas());
  // The document's own key order, as agents have always received it.
  return {
    version: g.config_version,
    gateway: head.gateway,
    services,
    entrypoint: head.entrypoint,
    service_tokens: head.service_tokens,
    acme: head.acme,
    observability: head.observability,
    generated_at: head.generated_at,
  };
}
