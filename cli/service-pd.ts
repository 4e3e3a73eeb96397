/**
 * @module
 * `service get`'s prefill/decode section for a service whose router disaggregates (the API's `pd`
 * view and the replicas' roles): whether it can route and why not, then its replicas per role with
 * each prefill replica's bootstrap port. How its traffic is routed (the built-in PD routing or the
 * external router) is the `Router:` line above it (router-modes.ts).
 */
import type { Service } from "../schema/service-api.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

export function pdLines(service: Pick<Service, "pd" | "replicas">, style: Style): string[] {
  const pd = service.pd;
  if (!pd) return [];
  const state = pd.routable ? "routable" : `not routable: ${pd.reason ?? "no replica of each role"}`;
  // Prefill first, then decode; a replica without a role serves neither side.
  const order = (role: string | null | undefined) => (role === "prefill" ? 0 : role === "decode" ? 1 : 2);
  const rows = [...service.replicas]
    .sort((a, b) => order(a.role) - order(b.role))
    .map((r) => ({
      cells: [
        r.role ?? "none (not routed)",
        r.id,
        r.url,
        r.role === "prefill" ? String(r.bootstrap_port ?? "none") : "-",
      ],
    }));
  return [
    "",
    `Prefill/decode: ${pd.prefill} prefill, ${pd.decode} decode; ${state}`,
    ...(rows.length > 0 ? renderTable(["ROLE", "REPLICA", "URL", "BOOTSTRAP PORT"], rows, style) : []),
  ];
}
