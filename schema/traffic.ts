/**
 * @module
 * A service's LLM traffic as the API shows it (`traffic` of a service and of each of its gateway
 * replicas): per window, requests and their rate, the error rate, percentiles of duration, TTFT,
 * TPOT and ITL, and tokens. Computed here once from the agents' `llm` windows (`llm-stats.ts`), by
 * the GatewayObject's service view and by the CLI tests' fake control plane alike. Windows of several
 * gateway replicas are merged bucket by bucket before any percentile is taken: percentiles are
 * never averaged.
 */
import * as v from "valibot";
import {
  addHistogram,
  DURATION_BOUNDS,
  emptyHistogram,
  type Histogram,
  histogramCount,
  LLM_WINDOWS,
  type LlmWindow,
  type LlmWindowName,
  quantile,
  TPOT_BOUNDS,
  TTFT_BOUNDS,
} from "./llm-stats.ts";

/** Seconds; null when the window holds no observation. */
export const PercentilesSchema = v.object({
  p50: v.nullable(v.number()),
  p90: v.nullable(v.number()),
  p99: v.nullable(v.number()),
});
export type Percentiles = v.InferOutput<typeof PercentilesSchema>;

export const TrafficWindowSchema = v.object({
  /** Requests that ended in the window (the count of its duration histogram). */
  requests: v.number(),
  requests_per_second: v.number(),
  /** Requests answered 5xx (by the gateway or the replica) or cut mid-response. */
  errors: v.number(),
  /** `errors / requests`; null without requests. */
  error_rate: v.nullable(v.number()),
  duration: PercentilesSchema,
  /** Time to first token (first byte of the body, or a stream's first content event). */
  ttft: PercentilesSchema,
  /** Time per output token of streams. */
  tpot: PercentilesSchema,
  /** Inter-token latency: the gaps between a stream's content events. */
  itl: PercentilesSchema,
  tokens: v.object({
    input: v.number(),
    /** Exact (the responses' usage) plus `estimated_output`. */
    output: v.number(),
    /** Output tokens of streams that carried no usage, counted one per content event. */
    estimated_output: v.number(),
    input_per_second: v.number(),
    output_per_second: v.number(),
  }),
});
export type TrafficWindow = v.InferOutput<typeof TrafficWindowSchema>;

export const TrafficSchema = v.object({
  /** Over the last 30, 60 and 300 seconds (the agents' windows). */
  windows: v.object({ "30": TrafficWindowSchema, "60": TrafficWindowSchema, "300": TrafficWindowSchema }),
});
export type Traffic = v.InferOutput<typeof TrafficSchema>;

/** The distributions of each window, absent where nothing was measured (as agents report them). */
export type LlmWindows = Partial<Record<LlmWindowName, { llm?: LlmWindow | undefined }>>;

export const emptyLlmWindow = (): LlmWindow => ({
  duration: emptyHistogram(),
  ttft: emptyHistogram(),
  tpot: emptyHistogram(),
  itl: emptyHistogram(),
  errors: 0,
  tokens: { input: 0, output: 0, estimated_output: 0 },
});

/** Adds `from` into `into`, bucket by bucket (both may be trimmed). */
export function addLlmWindow(into: LlmWindow, from: LlmWindow): void {
  addHistogram(into.duration, from.duration);
  addHistogram(into.ttft, from.ttft);
  addHistogram(into.tpot, from.tpot);
  addHistogram(into.itl, from.itl);
  into.errors += from.errors;
  into.tokens.input += from.tokens.input;
  into.tokens.output += from.tokens.output;
  into.tokens.estimated_output += from.tokens.estimated_output;
  if (from.queue) {
    into.queue ??= { waiting: 0, samples: 0 };
    into.queue.waiting += from.queue.waiting;
    into.queue.samples += from.queue.samples;
  }
}

/** The sum of several windows (a copy: the inputs are left alone); undefined when none was given. */
export function mergeLlmWindows(windows: readonly (LlmWindow | undefined)[]): LlmWindow | undefined {
  const present = windows.filter((w): w is LlmWindow => w !== undefined);
  if (present.length === 0) return undefined;
  const out = emptyLlmWindow();
  for (const w of present) addLlmWindow(out, w);
  return out;
}

/** To the microsecond: finer than any bucket, and short on the wire. */
const micro = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6);
const milli = (x: number) => Math.round(x * 1000) / 1000;

export const percentiles = (bounds: readonly number[], h: Histogram): Percentiles => ({
  p50: micro(quantile(bounds, h, 0.5)),
  p90: micro(quantile(bounds, h, 0.9)),
  p99: micro(quantile(bounds, h, 0.99)),
});

/** One window as the API shows it; `llm` undefined: nothing measured. */
export function trafficWindow(llm: LlmWindow | undefined, seconds: number): TrafficWindow {
  const w = llm ?? emptyLlmWindow();
  const requests = histogramCount(w.duration);
  return {
    requests,
    requests_per_second: milli(requests / seconds),
    errors: w.errors,
    error_rate: requests > 0 ? Math.round((w.errors / requests) * 1e6) / 1e6 : null,
    duration: percentiles(DURATION_BOUNDS, w.duration),
    ttft: percentiles(TTFT_BOUNDS, w.ttft),
    tpot: percentiles(TPOT_BOUNDS, w.tpot),
    itl: percentiles(TPOT_BOUNDS, w.itl),
    tokens: {
      input: w.tokens.input,
      output: w.tokens.output,
      estimated_output: w.tokens.estimated_output,
      input_per_second: milli(w.tokens.input / seconds),
      output_per_second: milli(w.tokens.output / seconds),
    },
  };
}

/** Every window as the API shows it. */
export function trafficOf(windows: LlmWindows): Traffic {
  const out = {} as Traffic["windows"];
  for (const name of LLM_WINDOWS) out[name] = trafficWindow(windows[name]?.llm, Number(name));
  return { windows: out };
}

/** Several gateway replicas' windows merged, window by window, as one service's traffic. */
export function mergedTraffic(replicas: readonly LlmWindows[]): Traffic {
  const merged: LlmWindows = {};
  for (const name of LLM_WINDOWS) merged[name] = { llm: mergeLlmWindows(replicas.map((r) => r[name]?.llm)) };
  return trafficOf(merged);
}
