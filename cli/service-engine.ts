/**
 * @module
 * The engines of a service's replicas as `gateplane service get` shows them: per replica the state
 * of the gateway's scrape of its `/metrics`, running and waiting requests, KV-cache use, the engine's
 * own prefix-cache hit rate and the read's age, then the errors of the replicas whose reads fail.
 * Everything is the API's `replicas[].engine` (the freshest read over the gateway replicas);
 * nothing is recomputed here. Cells are escaped by `renderTable`, error lines by the print layer.
 */
import type { ReplicaEngine, Service } from "../schema/service-api.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

/** `12.5%`; `-` when the engine exports none. */
export const formatPercent = (ratio: number | null): string => (ratio === null ? "-" : `${(ratio * 100).toFixed(1)}%`);

/** `0.4s`, `12s`, `3m`: the read's age; `-` before the first good read. */
export function formatSignalAge(seconds: number | null): string {
  if (seconds === null) return "-";
  if (seconds < 9.95) return `${seconds.toFixed(1)}s`;
  if (seconds < 120) return `${Math.round(seconds)}s`;
  return `${Math.round(seconds / 60)}m`;
}

const count = (n: number | null) => (n === null ? "-" : String(Math.round(n * 100) / 100));

/**
 * The lines printed under the router's: nothing when no replica has signals (an older control
 * plane, `engine: none`, or no report yet), so services without engines print as before.
 */
export function engineLines(service: Pick<Service, "replicas">, style: Style): string[] {
  if (!service.replicas.some((r) => r.engine)) return [];
  const rows = service.replicas.map((r) => {
    const e: ReplicaEngine | null | undefined = r.engine;
    if (!e) return { cells: [r.id, "-", "not reported"] };
    return {
      cells: [
        r.id,
        e.engine ?? "-",
        e.state,
        count(e.running),
        count(e.waiting),
        formatPercent(e.kv_cache_usage),
        formatPercent(e.prefix_cache_hit_rate),
        formatSignalAge(e.age_seconds),
      ],
    };
  });
  // An error may span lines (a parser's report): one line per replica, as the router's reasons.
  const errors = service.replicas.flatMap((r) =>
    r.engine?.error ? [`${r.id}: ${r.engine.error.replace(/\s*\n\s*/g, " ").trim()}`] : [],
  );
  return [
    "",
    ...renderTable(["REPLICA", "ENGINE", "STATE", "RUNNING", "WAITING", "KV", "PREFIX HIT", "AGE"], rows, style),
    ...(errors.length > 0 ? ["", "Engine errors:", ...errors.map((e) => `  ${e}`)] : []),
  ];
}
