/**
 * @module
 * Engine load signals: which model server a service's replicas run (`engine:` of a service), and what
 * the gateway last read from each replica's Prometheus `/metrics` (running and waiting requests,
 * KV-cache use, the engine's own prefix-cache hit rate), as the API shows it per replica and the
 * agent reports it. Metric names: `../shared/reference/llm-serving-protocols.md` §1 (vLLM v1 and
 * SGLang; both `sglang:` and `sglang_` prefixes).
 */
import * as v from "valibot";

/** `engine:` of a service; absent: detected from the replica's exposition (`auto`). */
export const ENGINES = ["vllm", "sglang", "none"] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * The state of a replica's signals: `fresh` (read within the staleness bound), `stale` (the last good
 * read is too old: policies fall back to the gateway's in-flight counts), `failed` (no good read yet
 * or the last reads failed), `unsupported` (the exposition is neither vLLM's nor SGLang's, or
 * `engine: none`).
 */
export const ENGINE_SIGNAL_STATES = ["fresh", "stale", "failed", "unsupported"] as const;
export type EngineSignalState = (typeof ENGINE_SIGNAL_STATES)[number];

const gauge = v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0)));
const ratio = v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1)));

/** One replica's engine signals, as reported and shown. Counts are summed over the exposition's series. */
export const EngineSignals = v.object({
  replica: v.pipe(v.string(), v.maxLength(200)),
  engine: v.nullable(v.picklist(["vllm", "sglang"])),
  state: v.picklist(ENGINE_SIGNAL_STATES),
  running: gauge,
  waiting: gauge,
  kv_cache_usage: ratio,
  prefix_cache_hit_rate: ratio,
  /** Seconds since the last good read; null before the first. */
  age_seconds: gauge,
  /** Why the last read failed (cleared by the next good one). */
  error: v.nullable(v.pipe(v.string(), v.maxLength(1000))),
});
export type EngineSignals = v.InferOutput<typeof EngineSignals>;
