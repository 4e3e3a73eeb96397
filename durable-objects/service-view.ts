/**
 * @module
 * A service as the API shows it: where clients reach it, its replicas, which gateway replicas
 * applied it (or refused it), its traffic and its autoscaler's standing decision.
 */
import type { RouterReport, ServiceRejection } from "../schema/agent-protocol.ts";
import { pdRouting } from "../schema/router.ts";
import { pdView, type ReplicaRole } from "../schema/service.ts";
import type { Service } from "../schema/service-api.ts";
import { trafficOf } from "../schema/traffic.ts";
import { gatewayDomain, serviceScheme } from "./config-service.ts";
import { aggregateStats, engineByReplica, healthByReplica, replicaStats, withoutLlm } from "./service-stats.ts";
import type { ServiceRow, ServiceStore } from "./service-store.ts";
import type { GatewayRow, ReplicaRow } from "./state.ts";

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
 * Python, the openai clients), and the proxy serves both paths there (`proxy/route-request.ts`).
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

/**
 * A gateway replica's router report (one entry per routed service of the gateway), parsed once
 * per report rather than at each view of one service (which made every apply O(services)).
 */
const parsedRouters = new Map<string, { text: string; byService: Map<string, RouterReport> }>();
function routerReports(replicaId: string, text: string): Map<string, RouterReport> {
  const cached = parsedRouters.get(replicaId);
  if (cached?.text === text) return cached.byService;
  const byService = new Map<string, RouterReport>();
  for (const x of JSON.parse(text) as RouterReport[]) if (!byService.has(x.service)) byService.set(x.service, x);
  parsedRouters.delete(replicaId);
  parsedRouters.set(replicaId, { text, byService });
  // Bounded: an isolate may run many objects.
  if (parsedRouters.size > 256) parsedRouters.delete(parsedRouters.keys().next().value!);
  return byService;
}

export function serviceView(
  g: GatewayRow,
  s: ServiceRow,
  store: ServiceStore,
  gatewayReplicas: ReplicaRow[],
  now = Date.now(),
): Service {
  const domain = gatewayDomain(g);
  const scheme = serviceScheme(g, s.configuration);
  const port = publicPort(g, gatewayReplicas, scheme);
  const active = gatewayReplicas.filter((r) => r.status === "provisioning" || r.status === "running");
  const routed = (s.configuration.router ?? g.configuration.router)?.type === "sglang";
  const stats = aggregateStats(
    s.name,
    gatewayReplicas.filter((r) => r.status === "running"),
    now,
  );
  const engines = engineByReplica(
    s.name,
    gatewayReplicas.filter((r) => r.status === "running"),
    now,
  );
  const health = healthByReplica(
    s.name,
    gatewayReplicas.filter((r) => r.status === "running"),
    now,
  );
  return {
    id: s.id,
    name: s.name,
    project_name: g.project_name,
    gateway: g.name,
    configuration: s.configuration,
    ...serviceUrls(g, s, gatewayReplicas, domain, scheme, port),
    created_at: s.created_at,
    updated_at: s.updated_at,
    replicas: store.replicas(s.name).map((r) => ({
      id: r.id,
      url: r.url,
      registered_at: r.registered_at,
      role: r.role ?? null,
      bootstrap_port: r.bootstrap_port ?? null,
      engine: engines.get(r.id) ?? null,
      health: health.get(r.id) ?? null,
    })),
    pd: pdView(s.name, pdRouting(s.configuration.router ?? g.configuration.router) !== null, store.replicas(s.name)),
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
      const report = r.routers ? routerReports(r.id, r.routers).get(s.name) : undefined;
      return {
        replica_num: r.replica_num,
        applied_version: applied,
        state,
        error: state !== "rejected" ? null : current && refused ? refused.error : r.config_error,
        // Only router services carry the field (null until this replica reported).
        ...(routed ? { router: report ? { mode: report.mode, reason: report.reason } : null } : {}),
        traffic: replicaTraffic(s.name, r, now),
      };
    }),
    stats: stats && withoutLlm(stats),
    traffic: stats && trafficOf(stats.windows),
    scaling: scalingView(s, store),
  };
}

/** A running replica's own traffic, once it reported within the last minute; null otherwise. */
function replicaTraffic(service: string, r: ReplicaRow, now: number): Service["traffic"] {
  const reported = r.status === "running" ? replicaStats(service, r, now) : null;
  return reported && trafficOf(reported.windows);
}

function scalingView(s: ServiceRow, store: ServiceStore): Service["scaling"] {
  if (s.configuration.replicas.groups) return roleScalingView(s, store);
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

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A PD service scaled per role: each role's decision, and their sums (null until both decided) so
 * readers of the co-located view still see the service's total. Null when no role scales.
 */
function roleScalingView(s: ServiceRow, store: ServiceStore): Service["scaling"] {
  const groups = s.configuration.replicas.groups ?? [];
  if (!groups.some((g) => g.scaling)) return null;
  const rows = store.roleScaling(s.name);
  const replicas = store.replicas(s.name);
  const role = (name: ReplicaRole) => {
    const row = rows.find((r) => r.role === name);
    return {
      desired_replicas: row?.desired_replicas ?? null,
      current_replicas: replicas.filter((r) => r.role === name).length,
      reason: row?.reason ?? null,
      last_change_at: iso(row?.last_change_at ?? null),
      last_evaluated_at: iso(row?.last_evaluated_at ?? null),
    };
  };
  const prefill = role("prefill");
  const decode = role("decode");
  const latest = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a > b ? a : b);
  return {
    desired_replicas:
      prefill.desired_replicas === null || decode.desired_replicas === null
        ? null
        : prefill.desired_replicas + decode.desired_replicas,
    current_replicas: replicas.length,
    reason:
      rows.length === 0
        ? null
        : `prefill: ${prefill.reason ?? "not decided yet"}; decode: ${decode.reason ?? "not decided yet"}`,
    last_change_at: latest(prefill.last_change_at, decode.last_change_at),
    last_evaluated_at: latest(prefill.last_evaluated_at, decode.last_evaluated_at),
    roles: { prefill, decode },
  };
}
