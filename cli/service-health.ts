/**
 * @module
 * The health of a service's replicas as `gateplane service get` shows it (docs/health.md): per
 * replica its state (healthy, slow_start, unknown, ejected, unhealthy), its circuit breaker and its
 * last active check, then why the replicas that are not healthy failed. Everything is the API's
 * `replicas[].health` (the worst over the gateway replicas); nothing is recomputed here.
 */
import type { Service } from "../schema/service-api.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

/** Nothing when no replica has a report (an older control plane or agent, or no report yet). */
export function healthLines(service: Pick<Service, "replicas">, style: Style): string[] {
  if (!service.replicas.some((r) => r.health)) return [];
  const rows = service.replicas.map((r) => {
    const h = r.health;
    if (!h) return { cells: [r.id, "not reported"] };
    return { cells: [r.id, h.state, h.circuit.replace("_", "-"), h.last_check ?? "-"] };
  });
  const errors = service.replicas.flatMap((r) =>
    r.health?.error && r.health.state !== "healthy"
      ? [`${r.id}: ${r.health.error.replace(/\s*\n\s*/g, " ").trim()}`]
      : [],
  );
  return [
    "",
    ...renderTable(["REPLICA", "HEALTH", "CIRCUIT", "LAST CHECK"], rows, style),
    ...(errors.length > 0 ? ["", "Health errors:", ...errors.map((e) => `  ${e}`)] : []),
  ];
}
