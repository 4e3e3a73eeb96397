/**
 * @module
 * `gateplane gateway get NAME`: the whole gateway, not the list's one row. A summary (status,
 * address, domain, router), the replicas with their agents and the configuration version each runs
 * against the one the gateway wants (or rejected), the services a replica refused, the gateway's
 * services, certificates, router modes and the DNS records to create. Everything printed from the
 * server goes through `renderTable`/`renderKeyValues`, where the CLI's escaping applies.
 */
import type { Gateway, GatewayReplica } from "../schema/api.ts";
import type { Service } from "../schema/service-api.ts";
import { formatAge } from "./age.ts";
import { certificatesTable } from "./certificates-table.ts";
import { dnsGuidance } from "./dns-guidance.ts";
import { gatewayStatus } from "./gateways-table.ts";
import { gatewayRouterLines } from "./router-modes.ts";
import { servicesTable } from "./services-table.ts";
import type { Style } from "./style.ts";
import { renderKeyValues, renderTable } from "./text-table.ts";

export function gatewayDetails(gateway: Gateway, services: readonly Service[], now: number, style: Style): string[] {
  const c = gateway.configuration;
  const router = c.router ? `${c.router.type} (${c.router.policy})` : "round robin (built-in)";
  const lines = renderKeyValues(
    [
      ["Name", gateway.name],
      ["Project", gateway.project_name],
      ["Status", [gatewayStatus(gateway), gateway.status_message].filter(Boolean).join(": ")],
      ["Backend", `${gateway.backend} ${gateway.region}`],
      ["Address", gateway.hostname ?? (gateway.replicas.length > 1 ? "(per replica)" : "-")],
      ["Domain", gateway.wildcard_domain ?? "-"],
      ["Certificate", c.certificate ? c.certificate.type : "none"],
      ["Router", router],
      ["Default", gateway.default ? "yes" : "no"],
      ["Created", formatAge(gateway.created_at, now)],
    ],
    style,
  );
  const replicas = [...gateway.replicas].sort((a, b) => a.replica_num - b.replica_num);
  lines.push(
    "",
    ...renderTable(
      ["REPLICA", "STATUS", "ADDRESS", "REGION", "INSTANCE", "AGENT", "CONFIG"],
      replicas.map((r) => ({
        cells: [
          String(r.replica_num),
          [r.status, r.status_message].filter(Boolean).join(": "),
          r.hostname ?? "-",
          r.region,
          r.instance_id ?? "-",
          r.agent ? (r.agent.version ?? "registered") : "-",
          replicaConfig(r),
        ],
      })),
      style,
    ),
  );
  const refused = replicas.flatMap((r) =>
    (r.config.rejected_services ?? []).map((x) => ({
      cells: [x.service, String(r.replica_num), x.kept ? "last good state" : "not served", oneLine(x.error)],
    })),
  );
  if (refused.length > 0) {
    lines.push("", ...renderTable(["REJECTED SERVICE", "REPLICA", "SERVING", "ERROR"], refused, style));
  }
  const own = services.filter((s) => s.gateway === gateway.name);
  lines.push("");
  if (own.length > 0) lines.push(...servicesTable(own, { now }, style));
  else lines.push("No services on this gateway.");
  lines.push(...certificatesTable(gateway, style), ...gatewayRouterLines(gateway));
  const dns = dnsGuidance(gateway);
  if (dns.length > 0) lines.push("", ...dns);
  return lines;
}

/**
 * `v7` when the replica runs the version the gateway wants; `v6 (v7 pending)` while it catches up;
 * `v6 (v7 rejected: …)` when its agent refused the newest; `, rejects 1 service` when it applied a
 * version but refused some of its services (listed below the table).
 */
export function replicaConfig(r: Pick<GatewayReplica, "config">): string {
  const { desired_version: desired, applied_version: applied, error } = r.config;
  const rejected = (r.config.rejected_services ?? []).length;
  const running = applied === null ? "none" : `v${applied}`;
  const base =
    applied !== null && applied >= desired
      ? running
      : error
        ? `${running} (v${desired} rejected: ${oneLine(error)})`
        : `${running} (v${desired} pending)`;
  return rejected > 0 ? `${base}, rejects ${rejected} service${rejected === 1 ? "" : "s"}` : base;
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim();
