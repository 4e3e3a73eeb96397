/**
 * @module
 * LLM windows for tests, as an agent would report them (`schema/llm-stats.ts`): histograms built
 * from the values observed, so a test can compare the API's percentiles with the true ones.
 */
import { DURATION_BOUNDS, type Histogram, type LlmWindow, TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";

/** A histogram of `values` over `bounds` (a value on a bound falls in that bound's bucket, as Prometheus's `le`). */
export function observe(bounds: readonly number[], values: readonly number[]): Histogram {
  const counts: number[] = [];
  for (const x of values) {
    const i = bounds.findIndex((b) => x <= b);
    const at = i === -1 ? bounds.length : i;
    for (let k = counts.length; k <= at; k++) counts[k] = 0;
    counts[at]!++;
  }
  return { counts, sum: values.reduce((a, b) => a + b, 0) };
}

/** The bucket `x` falls in, as [lower, upper] (the last bound for values past it). */
export function bucketOf(bounds: readonly number[], x: number): [number, number] {
  const i = bounds.findIndex((b) => x <= b);
  if (i === -1) return [bounds[bounds.length - 1]!, bounds[bounds.length - 1]!];
  return [i === 0 ? 0 : bounds[i - 1]!, bounds[i]!];
}

/** The q-quantile of `values` as the nearest rank. */
export const trueQuantile = (values: readonly number[], q: number): number =>
  [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * values.length) - 1)]!;

export interface Observed {
  /** Seconds per request; every request has one. */
  duration: number[];
  ttft?: number[];
  tpot?: number[];
  itl?: number[];
  errors?: number;
  tokens?: Partial<LlmWindow["tokens"]>;
}

/** The window an agent reports for these observations. */
export function llmWindow(o: Observed): LlmWindow {
  return {
    duration: observe(DURATION_BOUNDS, o.duration),
    ttft: observe(TTFT_BOUNDS, o.ttft ?? []),
    tpot: observe(TPOT_BOUNDS, o.tpot ?? []),
    itl: observe(TPOT_BOUNDS, o.itl ?? []),
    errors: o.errors ?? 0,
    tokens: { input: 0, output: 0, estimated_output: 0, ...o.tokens },
  };
}
