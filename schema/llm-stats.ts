/**
 * @module
 * What a gateway measures of LLM traffic, as one shape on every side: the histogram buckets (the
 * proxy fills them, Prometheus and the API read them), the per-window distributions an agent reports
 * to the control plane (mergeable: counts per bucket add up across proxy processes and gateway
 * replicas, and percentiles are taken only after merging, never averaged), and the quantile estimate
 * the API shows.
 *
 * Buckets are OpenTelemetry's GenAI advisory boundaries (`gen_ai.server.time_to_first_token`,
 * `gen_ai.server.time_per_output_token`, `gen_ai.server.request.duration`, `gen_ai.client.token.usage`),
 * extended where LLM traffic goes past them: TTFT past 10 s (long prompts, queueing), inter-token
 * gaps under 10 ms (small models, fast engines), requests past 82 s (long generations).
 */
import * as v from "valibot";

/** Seconds: OTel's 16 boundaries, then 15, 30, 60. */
export const TTFT_BOUNDS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 30, 60,
] as const;
/** Seconds, for time per output token and the gaps between a stream's tokens: 1–7.5 ms, then OTel's 13. */
export const TPOT_BOUNDS = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5,
] as const;
/** Seconds: OTel's 14 (0.01 doubling to 81.92), then three more doublings to ~11 min. */
export const DURATION_BOUNDS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84, 327.68, 655.36,
] as const;
/** Tokens per request: OTel's powers of 4 up to 4 Mi. */
export const TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304] as const;

/** The report's windows, in seconds (dstack's collector's). */
export const LLM_WINDOWS = ["30", "60", "300"] as const;
export type LlmWindowName = (typeof LLM_WINDOWS)[number];

const count = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const MAX_BUCKETS = Math.max(TTFT_BOUNDS.length, TPOT_BOUNDS.length, DURATION_BOUNDS.length, TOKEN_BOUNDS.length) + 1;

/**
 * A histogram on the wire: `counts[i]` observations fell in bucket i (≤ bounds[i], the last one past
 * every bound: +Inf); not cumulative. Trailing zero buckets may be left out (most windows are sparse).
 */
export const Histogram = v.object({
  counts: v.pipe(v.array(count), v.maxLength(MAX_BUCKETS)),
  sum: v.pipe(v.number(), v.finite(), v.minValue(0)),
});
export type Histogram = v.InferOutput<typeof Histogram>;

/**
 * A histogram over `bounds`: at most one count per bound plus +Inf. A longer one was filled with
 * other bounds, and adding it to these would mix buckets, so it is refused (naming the field).
 */
const histogramOver = (bounds: readonly number[]) =>
  v.object({
    counts: v.pipe(
      v.array(count),
      v.maxLength(
        bounds.length + 1,
        `expected at most ${bounds.length + 1} buckets (${bounds.length} bounds and +Inf)`,
      ),
    ),
    sum: Histogram.entries.sum,
  });

/**
 * One service's LLM traffic over one window on one gateway host, beside dstack's `requests` and
 * `request_time`. TTFT, TPOT and ITL cover responses that reached a replica and sent a body; TPOT and
 * ITL only streams (per request: (duration − TTFT) / (output tokens − 1); per gap between content
 * events). Tokens are the responses' own `usage`, except `estimated_output` (also counted in `output`):
 * content events of streams that carried no usage, one token each.
 */
export const LlmWindow = v.object({
  duration: histogramOver(DURATION_BOUNDS),
  ttft: histogramOver(TTFT_BOUNDS),
  tpot: histogramOver(TPOT_BOUNDS),
  itl: histogramOver(TPOT_BOUNDS),
  /** Requests answered 5xx by the gateway or the replica, or cut mid-response. */
  errors: count,
  tokens: v.object({ input: count, output: count, estimated_output: count }),
  /**
   * The engines' waiting queues (`scaling.metric: queue`): at every scrape tick of the host, the mean
   * `waiting` over the service's replicas with fresh signals is one sample; `waiting` sums the samples.
   * The window's mean waiting per replica is `waiting / samples`. Absent without engine signals.
   */
  queue: v.optional(v.object({ waiting: v.pipe(v.number(), v.finite(), v.minValue(0)), samples: count })),
});
export type LlmWindow = v.InferOutput<typeof LlmWindow>;

/** A histogram with nothing in it. */
export const emptyHistogram = (): Histogram => ({ counts: [], sum: 0 });

/** Adds `from` into `into` (both may be trimmed). */
export function addHistogram(into: Histogram, from: Histogram): void {
  for (let i = 0; i < from.counts.length; i++) into.counts[i] = (into.counts[i] ?? 0) + from.counts[i]!;
  into.sum += from.sum;
}

export const histogramCount = (h: Histogram): number => h.counts.reduce((a, b) => a + b, 0);

/**
 * The q-quantile (0 < q < 1) estimated as Prometheus's `histogram_quantile` does: linear within the
 * bucket that holds the rank, the first bucket starting at 0; a rank in +Inf answers the highest
 * bound. Null for an empty histogram.
 */
export function quantile(bounds: readonly number[], h: Histogram, q: number): number | null {
  const total = histogramCount(h);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const inBucket = h.counts[i]!;
    if (below + inBucket >= rank && inBucket > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return lower + (bounds[i]! - lower) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1]!;
}
