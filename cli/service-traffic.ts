/**
 * @module
 * A service's LLM traffic as `gateplane service get` shows it (one window, 60 s unless `--window`
 * says otherwise): requests and errors, tokens per second, TTFT/ITL/TPOT/duration percentiles over
 * every gateway replica, then the same per gateway replica; and the compact columns of
 * `service list -v`. Everything comes from the API's `traffic` (`schema/traffic.ts`); nothing is
 * recomputed here.
 */
import type { Service } from "../schema/service-api.ts";
import type { Percentiles, TrafficWindow } from "../schema/traffic.ts";
import type { Style } from "./style.ts";
import { renderKeyValues, renderTable } from "./text-table.ts";

export const TRAFFIC_WINDOWS = ["30", "60", "300"] as const;
export type TrafficWindowName = (typeof TRAFFIC_WINDOWS)[number];
export const DEFAULT_TRAFFIC_WINDOW: TrafficWindowName = "60";

/** `35ms`, `2.5ms`, `1.24s`, `12.5s`; `-` for no value. */
export function formatLatency(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "-";
  const ms = seconds * 1000;
  if (ms < 10) return `${Number(ms.toFixed(1))}ms`;
  if (ms < 999.5) return `${Math.round(ms)}ms`;
  return seconds < 10 ? `${seconds.toFixed(2)}s` : `${seconds.toFixed(1)}s`;
}

/** `0.25`, `12.3`, `1300`: three significant digits or the whole number. */
export function formatRate(perSecond: number): string {
  if (perSecond === 0) return "0";
  if (perSecond >= 100) return String(Math.round(perSecond));
  return perSecond >= 10 ? perSecond.toFixed(1) : perSecond.toFixed(2);
}

/** `3.0%`; `-` without requests. */
export const formatErrorRate = (rate: number | null | undefined): string =>
  rate === null || rate === undefined ? "-" : `${(rate * 100).toFixed(1)}%`;

const LATENCIES: [string, (w: TrafficWindow) => Percentiles][] = [
  ["TTFT", (w) => w.ttft],
  ["ITL", (w) => w.itl],
  ["TPOT", (w) => w.tpot],
  ["DURATION", (w) => w.duration],
];

/** The lines `service get` prints under the services table. */
export function trafficLines(
  service: Pick<Service, "traffic" | "gateway_replicas">,
  window: TrafficWindowName,
  style: Style,
): string[] {
  const merged = service.traffic?.windows[window];
  const replicas = [...service.gateway_replicas].sort((a, b) => a.replica_num - b.replica_num).filter((r) => r.traffic);
  const lines = [""];
  if (!merged) {
    lines.push(`Traffic (last ${window}s): not reported yet by every running gateway replica`);
  } else {
    const estimated = merged.tokens.estimated_output;
    lines.push(
      ...renderKeyValues(
        [
          ["Traffic", `last ${window}s, all gateway replicas`],
          [
            "Requests",
            `${formatRate(merged.requests_per_second)}/s (${merged.requests}), errors ${formatErrorRate(merged.error_rate)}`,
          ],
          [
            "Tokens/s",
            `in ${formatRate(merged.tokens.input_per_second)}, out ${formatRate(merged.tokens.output_per_second)}` +
              (estimated > 0 ? ` (${estimated} of ${merged.tokens.output} output tokens estimated)` : ""),
          ],
        ],
        style,
      ),
      "",
      ...renderTable(
        ["LATENCY", "P50", "P90", "P99"],
        LATENCIES.map(([name, of]) => {
          const p = of(merged);
          return { cells: [name, formatLatency(p.p50), formatLatency(p.p90), formatLatency(p.p99)] };
        }),
        style,
      ),
    );
  }
  if (replicas.length > 0) {
    lines.push(
      "",
      ...renderTable(
        ["REPLICA", "REQ/S", "ERRORS", "TTFT P50", "TTFT P90", "TTFT P99", "ITL P90", "TOK/S IN", "TOK/S OUT"],
        replicas.map((r) => {
          const w = r.traffic!.windows[window];
          return {
            cells: [
              String(r.replica_num),
              formatRate(w.requests_per_second),
              formatErrorRate(w.error_rate),
              formatLatency(w.ttft.p50),
              formatLatency(w.ttft.p90),
              formatLatency(w.ttft.p99),
              formatLatency(w.itl.p90),
              formatRate(w.tokens.input_per_second),
              formatRate(w.tokens.output_per_second),
            ],
          };
        }),
        style,
      ),
    );
  }
  return lines;
}

/** The compact columns of `service list -v`: TTFT p90 and output tokens per second, `-` until reported. */
export const TRAFFIC_COLUMNS = ["TTFT P90", "TOK/S OUT"];
export function trafficCells(service: Pick<Service, "traffic">, window: TrafficWindowName): string[] {
  const w = service.traffic?.windows[window];
  return w ? [formatLatency(w.ttft.p90), formatRate(w.tokens.output_per_second)] : ["-", "-"];
}
