/**
 * @module
 * What one scrape of a replica's `/metrics` says: which engine exported it (vLLM's `vllm:` series,
 * SGLang's `sglang:` or, since SGLang v0.5.4, `sglang_` series) and the load figures policies read.
 * Names: `../shared/reference/llm-serving-protocols.md` §1. One server may export several series of
 * a metric (vLLM's `engine` index with data parallelism, SGLang's `dp_rank`/`tp_rank`/`engine_type`):
 * counts are summed over them and ratios averaged, as SGLang Model Gateway's monitor does.
 *
 * Only the handful of names below are kept; every other line is skipped by the parser unread.
 */
import type { ExpositionSink } from "./exposition-parser.ts";

export type DetectedEngine = "vllm" | "sglang";

/** The metric names (without the engine's prefix) of one engine's figures, in order of preference. */
interface EngineNames {
  running: string;
  waiting: string;
  kv: readonly string[];
  /** Counter pairs [hits, queries], preferred first: the hit rate is their rate between scrapes. */
  prefixCounters: readonly (readonly [string, string])[];
  /** Gauges of the hit rate, when no counter pair is exported. */
  prefixGauge: string;
}

const NAMES: Record<DetectedEngine, EngineNames> = {
  vllm: {
    running: "num_requests_running",
    waiting: "num_requests_waiting",
    // v1 since 0.9; `gpu_cache_usage_perc` is v0's name and v1's deprecated alias.
    kv: ["kv_cache_usage_perc", "gpu_cache_usage_perc"],
    // prometheus_client appends `_total` to counters; the v1 0.9 aliases are `gpu_prefix_cache_*`.
    prefixCounters: [
      ["prefix_cache_hits_total", "prefix_cache_queries_total"],
      ["gpu_prefix_cache_hits_total", "gpu_prefix_cache_queries_total"],
    ],
    prefixGauge: "gpu_prefix_cache_hit_rate",
  },
  sglang: {
    running: "num_running_reqs",
    waiting: "num_queue_reqs",
    kv: ["token_usage"],
    prefixCounters: [["cached_tokens_total", "prompt_tokens_total"]],
    // Reported to drop to 0 after decoding (sglang issue #5625): only a fallback.
    prefixGauge: "cache_hit_rate",
  },
};

/** The engine of a metric name and the name without its prefix; null for any other name. */
function split(name: string): [DetectedEngine, string] | null {
  if (name.startsWith("vllm:")) return ["vllm", name.slice(5)];
  if (name.startsWith("sglang:") || name.startsWith("sglang_")) return ["sglang", name.slice(7)];
  return null;
}

const WANTED: Record<DetectedEngine, Set<string>> = {
  vllm: namesOf(NAMES.vllm),
  sglang: namesOf(NAMES.sglang),
};

function namesOf(n: EngineNames): Set<string> {
  return new Set([n.running, n.waiting, ...n.kv, ...n.prefixCounters.flat(), n.prefixGauge]);
}

/** Sum, count of finite samples of one metric. */
interface Acc {
  sum: number;
  n: number;
}

/** Counter totals read at one scrape (summed over series), for the rate between two scrapes. */
export interface PrefixCounters {
  /** Which pair they are (index in the engine's preference list): a rate needs the same pair twice. */
  pair: number;
  hits: number;
  queries: number;
}

/** The figures of one scrape. */
export interface EngineReading {
  engine: DetectedEngine;
  /** Null when the exposition lacks the metric (the reading then gives no load). */
  running: number | null;
  waiting: number | null;
  kvUsage: number | null;
  prefixCounters: PrefixCounters | null;
  /** The engine's own hit-rate gauge (v0 vLLM, SGLang's fallback), averaged. */
  prefixGauge: number | null;
}

/**
 * Collects one scrape. `expected`: the service's `engine:` (null: detect). Series of the other engine
 * are ignored when one is expected; when detecting, the first prefix seen decides.
 */
export class ReadingCollector implements ExpositionSink {
  readonly #expected: DetectedEngine | null;
  #engine: DetectedEngine | null = null;
  readonly #acc = new Map<string, Acc>();

  constructor(expected: DetectedEngine | null) {
    this.#expected = expected;
  }

  #see(engine: DetectedEngine): boolean {
    if (this.#expected !== null) {
      if (engine !== this.#expected) return false;
      this.#engine = engine;
      return true;
    }
    this.#engine ??= engine;
    return this.#engine === engine;
  }

  family(name: string): void {
    const parts = split(name);
    if (parts) this.#see(parts[0]);
  }

  wants(name: string): boolean {
    const parts = split(name);
    if (!parts || !this.#see(parts[0])) return false;
    return WANTED[parts[0]].has(parts[1]);
  }

  sample(name: string, _labels: Readonly<Record<string, string>>, value: number): void {
    // NaN (no data yet) and ±Inf say nothing a sum or a mean could use.
    if (!Number.isFinite(value)) return;
    const base = split(name)![1];
    const acc = this.#acc.get(base);
    if (acc) {
      acc.sum += value;
      acc.n++;
    } else this.#acc.set(base, { sum: value, n: 1 });
  }

  /** The engine whose series the body had; null when it had none (`unsupported`). */
  get engine(): DetectedEngine | null {
    return this.#engine;
  }

  /** The reading, once the body ended; null when no engine was recognised. */
  reading(): EngineReading | null {
    const engine = this.#engine;
    if (!engine) return null;
    const names = NAMES[engine];
    const sum = (n: string) => this.#acc.get(n)?.sum ?? null;
    const mean = (n: string) => {
      const a = this.#acc.get(n);
      return a ? clamp01(a.sum / a.n) : null;
    };
    let kvUsage: number | null = null;
    for (const n of names.kv) if (kvUsage === null) kvUsage = mean(n);
    let prefixCounters: PrefixCounters | null = null;
    names.prefixCounters.forEach(([hits, queries], pair) => {
      const h = sum(hits);
      const q = sum(queries);
      if (prefixCounters === null && h !== null && q !== null) prefixCounters = { pair, hits: h, queries: q };
    });
    const running = sum(names.running);
    const waiting = sum(names.waiting);
    return {
      engine,
      running: running === null ? null : Math.max(0, running),
      waiting: waiting === null ? null : Math.max(0, waiting),
      kvUsage,
      prefixCounters,
      prefixGauge: mean(names.prefixGauge),
    };
  }
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** The metric names a reading needs for a load (an error names the missing one). */
export function missingLoad(reading: EngineReading): string | null {
  const names = NAMES[reading.engine];
  const prefix = reading.engine === "vllm" ? "vllm:" : "sglang:";
  if (reading.running === null) return `${prefix}${names.running}`;
  if (reading.waiting === null) return `${prefix}${names.waiting}`;
  return null;
}

/**
 * The prefix-cache hit rate between two scrapes: hits over queries of the tokens queried since the
 * previous one; `previousRate` when none were (an idle engine keeps its last rate rather than
 * flickering to unknown), or when a counter went back (an engine restart: the next scrape has a rate
 * again). Without counters, the engine's own gauge.
 */
export function prefixHitRate(
  previous: PrefixCounters | null,
  reading: EngineReading,
  previousRate: number | null,
): number | null {
  const now = reading.prefixCounters;
  if (!now) return reading.prefixGauge;
  if (!previous || previous.pair !== now.pair) return previousRate;
  const queries = now.queries - previous.queries;
  const hits = now.hits - previous.hits;
  if (queries <= 0 || hits < 0) return previousRate;
  return clamp01(hits / queries);
}
