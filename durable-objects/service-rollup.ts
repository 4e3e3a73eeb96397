/**
 * @module
 * A service's traffic history, pure part: what one minute's point holds (sampled from the agents'
 * reports) and how points of a range are read back (`schema/service-metrics.ts`). The storage, its
 * bound and its table: `service-history.ts`.
 *
 * A minute's point is the service's last-60-seconds window as last reported in that minute, merged
 * over the gateway's running replicas whose report is fresh (`service-stats.ts`): agents report
 * every 5 s, so the last sample of a minute covers about that minute. Distributions are kept as
 * histograms, so a step of several minutes merges them before taking a percentile.
 */
import {
  addHistogram,
  emptyHistogram,
  type Histogram,
  quantile,
  TPOT_BOUNDS,
  TTFT_BOUNDS,
} from "../schema/llm-stats.ts";
import { METRICS_RANGES, type MetricsPoint, type MetricsRange } from "../schema/service-metrics.ts";
import { type ReportingReplica, replicaStats } from "./service-stats.ts";

export const MINUTE_MS = 60_000;

/** One minute of one service, as stored (times in ms since the epoch). */
export interface RollupRow {
  service: string;
  /** The minute's start. */
  minute: number;
  /** When the sample was taken (the last report of the minute). */
  at: number;
  reporting: number;
  requests: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  /** JSON `Histogram`s over `TTFT_BOUNDS` and `TPOT_BOUNDS`. */
  ttft: string;
  itl: string;
  desired: number | null;
  registered: number;
}

/**
 * The point of the minute holding `now`, from the running replicas' fresh reports; null when none
 * of them has a fresh report (nothing is known of that minute).
 */
export function sampleMinute(
  service: string,
  running: readonly ReportingReplica[],
  replicas: { desired: number | null; registered: number },
  now: number,
): RollupRow | null {
  const ttft = emptyHistogram();
  const itl = emptyHistogram();
  const row: RollupRow = {
    service,
    minute: Math.floor(now / MINUTE_MS) * MINUTE_MS,
    at: now,
    reporting: 0,
    requests: 0,
    errors: 0,
    tokens_in: 0,
    tokens_out: 0,
    ttft: "",
    itl: "",
    ...replicas,
  };
  for (const r of running) {
    const stats = replicaStats(service, r, now);
    if (!stats) continue;
    row.reporting++;
    const w = stats.windows["60"];
    if (!w.llm) {
      row.requests += w.requests;
      continue;
    }
    row.requests += w.llm.duration.counts.reduce((a, b) => a + b, 0);
    row.errors += w.llm.errors;
    row.tokens_in += w.llm.tokens.input;
    row.tokens_out += w.llm.tokens.output;
    addHistogram(ttft, w.llm.ttft);
    addHistogram(itl, w.llm.itl);
  }
  if (row.reporting === 0) return null;
  row.ttft = JSON.stringify(ttft);
  row.itl = JSON.stringify(itl);
  return row;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const q = (bounds: readonly number[], h: Histogram, p: number) => {
  const x = quantile(bounds, h, p);
  return x === null ? null : round(x, 6);
};

/**
 * The points of `range` ending at `now`: minutes grouped into the range's steps (oldest first),
 * sums added, histograms merged, replicas as of the step's last minute. `rows` oldest first.
 */
export function rangePoints(rows: readonly RollupRow[], range: MetricsRange, now: number): MetricsPoint[] {
  const { seconds, step } = METRICS_RANGES[range];
  const stepMs = step * 1000;
  const since = now - seconds * 1000;
  const groups = new Map<number, RollupRow[]>();
  for (const r of rows) {
    if (r.minute < since) continue;
    const start = Math.floor(r.minute / stepMs) * stepMs;
    const group = groups.get(start);
    if (group) group.push(r);
    else groups.set(start, [r]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([start, group]) => {
      const ttft = emptyHistogram();
      const itl = emptyHistogram();
      let requests = 0;
      let errors = 0;
      let input = 0;
      let output = 0;
      for (const r of group) {
        requests += r.requests;
        errors += r.errors;
        input += r.tokens_in;
        output += r.tokens_out;
        addHistogram(ttft, JSON.parse(r.ttft) as Histogram);
        addHistogram(itl, JSON.parse(r.itl) as Histogram);
      }
      // Each minute's sample covers 60 s: the step's rate is over the minutes it holds.
      const covered = group.length * 60;
      const last = group[group.length - 1]!;
      return {
        t: new Date(start).toISOString(),
        requests_per_second: round(requests / covered, 3),
        error_rate: requests > 0 ? round(errors / requests, 6) : null,
        ttft: { p50: q(TTFT_BOUNDS, ttft, 0.5), p90: q(TTFT_BOUNDS, ttft, 0.9) },
        itl: { p50: q(TPOT_BOUNDS, itl, 0.5), p90: q(TPOT_BOUNDS, itl, 0.9) },
        tokens_per_second: { input: round(input / covered, 3), output: round(output / covered, 3) },
        replicas: { desired: last.desired, registered: last.registered },
        reporting: Math.max(...group.map((r) => r.reporting)),
      };
    });
}
