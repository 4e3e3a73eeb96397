/**
 * @module
 * A gateway's services in its object's storage, and what is derived from them: the versioned
 * configuration document its agents serve, and the API view of each service (URL, replicas,
 * which gateway replicas applied it, traffic).
 */
import type { RouterReport, ServiceRejection, ServiceStats } from "../schema/agent-protocol.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import type { ServiceConfiguration } from "../schema/service.ts";
import type { Service } from "../schema/service-api.ts";
import { configService, gatewayDomain, serviceScheme } from "./config-service.ts";
import type { GatewayRow, ReplicaRow } from "./state.ts";

export { gatewayDomain, serviceScheme };

export interface ServiceRow {
  name: string;
  id: string;
  configuration: ServiceConfiguration;
  configuration_path: string | null;
  created_at: string;
  updated_at: string;
  config_version: number;
}

export interface ServiceReplicaRow {
  service: string;
  id: string;
  url: string;
  registered_at: string;
}

/** The autoscaler's standing decision for a service with `scaling` (times in ms since the epoch). */
export interface ScalingRow {
  service: string;
  desired_replicas: number;
  reason: string;
  /** When the autoscaler last moved `desired_replicas`; null before its first move (no delay applies then). */
  last_change_at: number | null;
  last_evaluated_at: number;
  /** When a change held back by a delay may go through (the alarm re-evaluates then). */
  next_evaluation_at: number | null;
}

type Row = Record<string, SqlStorageValue>;

export class ServiceStore {
  constructor(private readonly sql: SqlStorage) {}

  list(): ServiceRow[] {
    return this.sql
      .exec("SELECT * FROM services ORDER BY name")
      .toArray()
      .map((r: Row) => ({ ...(r as unknown as ServiceRow), configuration: JSON.parse(r.configuration as string) }));
  }

  get(name: string): ServiceRow | null {
    return this.list().find((s) => s.name === name) ?? null;
  }

  upsert(row: ServiceRow): void {
    this.sql.exec(
      `INSERT INTO services (name, id, configuration, configuration_path, created_at, updated_at, config_version)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET configuration = excluded.configuration,
         configuration_path = excluded.configuration_path, updated_at = excluded.updated_at,
         config_version = excluded.config_version`,
      row.name,
      row.id,
      JSON.stringify(row.configuration),
      row.configuration_path,
      row.created_at,
      row.updated_at,
      row.config_version,
    );
  }

  touch(name: string, configVersion: number): void {
    this.sql.exec(
      "UPDATE services SET config_version = ?, updated_at = ? WHERE name = ?",
      configVersion,
      new Date().toISOString(),
      name,
    );
  }

  remove(name: string): void {
    this.sql.exec("DELETE FROM service_scaling WHERE service = ?", name);
    this.sql.exec("DELETE FROM service_replicas WHERE service = ?", name);
    this.sql.exec("DELETE FROM services WHERE name = ?", name);
  }

  replicas(service?: string): ServiceReplicaRow[] {
    const rows = service
      ? this.sql.exec("SELECT * FROM service_replicas WHERE service = ? ORDER BY registered_at, id", service)
      : this.sql.exec("SELECT * FROM service_replicas ORDER BY registered_at, id");
    return rows.toArray() as unknown as ServiceReplicaRow[];
  }

  putReplica(service: string, id: string, url: string): "created" | "updated" | "unchanged" {
    const existing = this.replicas(service).find((r) => r.id === id);
    if (existing?.url === url) return "unchanged";
    this.sql.exec(
      `INSERT INTO service_replicas (service, id, url, registered_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET url = excluded.url`,
      service,
      id,
      url,
      new Date().toISOString(),
    );
    return existing ? "updated" : "created";
  }

  scaling(service: string): ScalingRow | null {
    const rows = this.sql.exec("SELECT * FROM service_scaling WHERE service = ?", service).toArray();
    return (rows[0] as unknown as ScalingRow | undefined) ?? null;
  }

  /** The earliest time a held scaling decision may go through, or null. */
  nextScalingEvaluation(): number | null {
    const row = this.sql.exec("SELECT MIN(next_evaluation_at) AS at FROM service_scaling").toArray()[0];
    return typeof row?.at === "number" ? row.at : null;
  }

  putScaling(row: ScalingRow): void {
    this.sql.exec(
      `INSERT INTO service_scaling (service, desired_replicas, reason, last_change_at, last_evaluated_at, next_evaluation_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(service) DO UPDATE SET desired_replicas = excluded.desired_replicas, reason = excluded.reason,
         last_change_at = excluded.last_change_at, last_evaluated_at = excluded.last_evaluated_at,
         next_evaluation_at = excluded.next_evaluation_at`,
      row.service,
      row.desired_replicas,
      row.reason,
      row.last_change_at,
      row.last_evaluated_at,
      row.next_evaluation_at,
    );
  }

  removeScaling(service: string): void {
    this.sql.exec("DELETE FROM service_scaling WHERE service = ?", service);
  }

  serviceTokens(): { id: string; secret_sha256: string }[] {
    return this.sql.exec("SELECT id, secret_sha256 FROM service_tokens ORDER BY id").toArray() as unknown as {
      id: string;
      secret_sha256: string;
    }[];
  }

  /** Replaces the project's service tokens; true when they changed. */
  replaceServiceTokens(tokens: { id: string; secret_sha256: string }[]): boolean {
    const before = JSON.stringify(this.serviceTokens());
    const sorted = [...tokens].sort((a, b) => (a.id < b.id ? -1 : 1));
    if (before === JSON.stringify(sorted)) return false;
    this.sql.exec("DELETE FROM service_tokens");
    for (const t of sorted)
      this.sql.exec("INSERT INTO service_tokens (id, secret_sha256) VALUES (?, ?)", t.id, t.secret_sha256);
    return true;
  }

  removeReplica(service: string, id: string): boolean {
    const existing = this.replicas(service).some((r) => r.id === id);
    if (existing) this.sql.exec("DELETE FROM service_replicas WHERE service = ? AND id = ?", service, id);
    return existing;
  }
}

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
          replicas.filter((r) => r.service === s.name).map((r) => ({ id: r.id, url: r.url })),
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
    generated_at: new Date().toISOString(),
  };
}

/**
 * Where clients reach the gateway: the load balancer, else the first running replica's address.
 * A local host serves HTTPS on a port of its own (`backend_data.https_port`).
 */
function publicPort(g: GatewayRow, gatewayReplicas: ReplicaRow[], scheme: "https" | "http"): string {
  if (g.configuration.backend !== "local") return "";
  const replica = gatewayReplicas.find((r) => r.status === "running" && r.hostname);
  if (scheme === "https") {
    const data = replica?.backend_data ? (JSON.parse(replica.backend_data) as { https_port?: unknown }) : null;
    return typeof data?.https_port === "number" ? `:${data.https_port}` : "";
  }
  const port = replica?.hostname?.split(":")[1];
  return port ? `:${port}` : "";
}

/**
 * Where a client reaches the service and the OpenAI entrypoint. On a local plain-HTTP gateway under
 * `localhost` the host's bare address is given (`/proxy/services/<project>/<name>/`, `/v1`):
 * `*.localhost` names resolve in curl and browsers but not through most system resolvers (Node,
 * Python, the openai clients), and the proxy serves both paths there (`proxy/host-routing.ts`).
 */
function serviceUrls(
  g: GatewayRow,
  s: ServiceRow,
  gatewayReplicas: ReplicaRow[],
  domain: string | null,
  scheme: "https" | "http",
  port: string,
): Pick<Service, "url" | "model_url"> {
  if (!domain) return { url: "", model_url: null };
  const bare = scheme === "http" && g.configuration.backend === "local" && /(^|\.)localhost$/.test(domain);
  const address = bare ? gatewayReplicas.find((r) => r.status === "running" && r.hostname)?.hostname : undefined;
  if (address) {
    return {
      url: `http://${address}/proxy/services/${g.project_name}/${s.name}/`,
      model_url: s.configuration.model ? `http://${address}/v1` : null,
    };
  }
  return {
    url: `${scheme}://${s.name}.${domain}${port}`,
    model_url: s.configuration.model ? `${scheme}://gateway.${domain}${port}${s.configuration.model.prefix}` : null,
  };
}

const STATS_WINDOWS = ["30", "60", "300"] as const;
/**
 * Agents report every 5 s; a report older than this is as good as none (a replica whose agent lost
 * the socket keeps running, and its last windows would otherwise freeze the autoscaler's view).
 */
export const STATS_MAX_AGE_MS = 60_000;

/**
 * Sums traffic over running gateway replicas (request-weighted mean time); null if one has not
 * reported, or not within {@link STATS_MAX_AGE_MS} of `now`.
 */
export function aggregateStats(service: string, running: ReplicaRow[], now = Date.now()): ServiceStats | null {
  if (running.length === 0) return null;
  const out: ServiceStats = {
    service,
    windows: {
      "30": { requests: 0, request_time: 0 },
      "60": { requests: 0, request_time: 0 },
      "300": { requests: 0, request_time: 0 },
    },
  };
  for (const r of running) {
    if (!r.stats || r.stats_at === null || now - r.stats_at > STATS_MAX_AGE_MS) return null;
    const reported = (JSON.parse(r.stats) as ServiceStats[]).find((s) => s.service === service);
    for (const w of STATS_WINDOWS) {
      const win = reported?.windows[w];
      if (!win) continue;
      const total = out.windows[w].requests + win.requests;
      out.windows[w].request_time =
        total === 0
          ? 0
          : (out.windows[w].request_time * out.windows[w].requests + win.request_time * win.requests) / total;
      out.windows[w].requests = total;
    }
  }
  for (const w of STATS_WINDOWS) out.windows[w].request_time = Math.round(out.windows[w].request_time * 1000) / 1000;
  return out;
}

export function serviceView(g: GatewayRow, s: ServiceRow, store: ServiceStore, gatewayReplicas: ReplicaRow[]): Service {
  const domain = gatewayDomain(g);
  const scheme = serviceScheme(g, s.configuration);
  const port = publicPort(g, gatewayReplicas, scheme);
  const active = gatewayReplicas.filter((r) => r.status === "provisioning" || r.status === "running");
  const routed = (s.configuration.router ?? g.configuration.router)?.type === "sglang";
  return {
    id: s.id,
    name: s.name,
    project_name: g.project_name,
    gateway: g.name,
    configuration: s.configuration,
    ...serviceUrls(g, s, gatewayReplicas, domain, scheme, port),
    created_at: s.created_at,
    updated_at: s.updated_at,
    replicas: store.replicas(s.name).map((r) => ({ id: r.id, url: r.url, registered_at: r.registered_at })),
    config_version: s.config_version,
    gateway_replicas: active.map((r) => {
      const applied = r.config_applied_version;
      const rejected = r.config_error !== null && (r.config_error_version ?? 0) >= s.config_version;
      // The applied version carries this service, but the agent refused the service itself.
      const refused = r.config_rejected
        ? (JSON.parse(r.config_rejected) as ServiceRejection[]).find((x) => x.service === s.name)
        : undefined;
      const current = applied !== null && applied >= s.config_version;
      const state = current ? (refused ? "rejected" : "in_sync") : rejected ? "rejected" : "pending";
      const report = r.routers
        ? (JSON.parse(r.routers) as RouterReport[]).find((x) => x.service === s.name)
        : undefined;
      return {
        replica_num: r.replica_num,
        applied_version: applied,
        state,
        error: state !== "rejected" ? null : current && refused ? refused.error : r.config_error,
        // Only router services carry the field (null until this replica reported).
        ...(routed ? { router: report ? { mode: report.mode, reason: report.reason } : null } : {}),
      };
    }),
    stats: aggregateStats(
      s.name,
      gatewayReplicas.filter((r) => r.status === "running"),
    ),
    scaling: scalingView(s, store),
  };
}

function scalingView(s: ServiceRow, store: ServiceStore): Service["scaling"] {
  if (!s.configuration.scaling) return null;
  const current = store.replicas(s.name).length;
  const row = store.scaling(s.name);
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    desired_replicas: row?.desired_replicas ?? null,
    current_replicas: current,
    reason: row?.reason ?? null,
    last_change_at: iso(row?.last_change_at ?? null),
    last_evaluated_at: iso(row?.last_evaluated_at ?? null),
  };
}
