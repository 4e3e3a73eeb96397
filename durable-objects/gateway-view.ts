/**
 * @module
 * A gateway as the API shows it, derived from its object's rows: status, addresses, DNS records to
 * create, and per replica the configuration it applied, certificates, agent and routers.
 */
import type { CertificateState, RouterReport, ServiceRejection } from "../schema/agent-protocol.ts";
import type { Gateway, GatewayReplica } from "../schema/api.ts";
import { dnsRecords } from "../schema/dns.ts";
import type { GatewayRow, ReplicaRow } from "./storage-schema.ts";

/**
 * The API view of a gateway and its replicas (`default` is filled in by the caller from D1): the
 * newest row of each replica number, replicas removed by a scale-in left out.
 */
export function gatewayView(g: GatewayRow, rows: ReplicaRow[], isDefault = false): Gateway {
  const newest = new Map<number, ReplicaRow>();
  for (const r of rows) {
    if (r.status === "terminated" && r.scale_in) continue;
    const seen = newest.get(r.replica_num);
    if (!seen || seen.created_ms <= r.created_ms) newest.set(r.replica_num, r);
  }
  const replicas: GatewayReplica[] = [...newest.values()]
    .sort((a, b) => a.replica_num - b.replica_num)
    .map((r) => ({
      replica_num: r.replica_num,
      hostname: r.hostname,
      backend: g.configuration.backend,
      region: r.region,
      instance_id: r.instance_id,
      created_at: r.created_at,
      status: r.status,
      status_message: r.status_message,
      config: {
        desired_version: g.config_version,
        applied_version: r.config_applied_version,
        error: r.config_error,
        rejected_services: r.config_rejected ? (JSON.parse(r.config_rejected) as ServiceRejection[]) : [],
      },
      certificates: r.certificates ? (JSON.parse(r.certificates) as CertificateState[]) : [],
      agent: r.agent_registered_at
        ? { registered_at: r.agent_registered_at, last_seen_at: r.agent_last_seen_at, version: r.agent_version }
        : null,
      routers: r.routers ? (JSON.parse(r.routers) as RouterReport[]) : [],
    }));
  return {
    id: g.id,
    name: g.name,
    project_name: g.project_name,
    configuration: { ...g.configuration, default: isDefault },
    created_at: g.created_at,
    status: g.status,
    status_message: g.status_message,
    hostname: g.hostname ?? soleAddress(replicas),
    wildcard_domain: g.configuration.domain,
    dns_records: dnsRecords(
      g.configuration.domain,
      g.hostname
        ? [g.hostname]
        : replicas.filter((r) => r.status !== "terminating" && r.status !== "terminated").map((r) => r.hostname),
    ),
    default: isDefault,
    to_be_deleted: g.to_be_deleted,
    backend: g.configuration.backend,
    region: g.configuration.region,
    replicas,
  };
}

/**
 * Without a load balancer, a gateway with one active replica is reached at that replica's address
 * (what its table shows); with several there is no one address, and the replicas carry theirs.
 */
function soleAddress(replicas: GatewayReplica[]): string | null {
  const active = replicas.filter((r) => r.status !== "terminating" && r.status !== "terminated");
  return active.length === 1 ? active[0]!.hostname : null;
}
