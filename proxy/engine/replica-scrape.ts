/**
 * @module
 * One scraped replica's standing: its engine, state, last good load, prefix-cache hit rate, the
 * error of its last failed read and its scrapes by result; and how the agent reports it. The
 * scraper (`scraper.ts`) moves it from state to state; this file only holds and shows it.
 */
import type { EngineSignalState, EngineSignals } from "../../schema/engine.ts";
import { type EngineReading, type PrefixCounters, prefixHitRate } from "./engine-reading.ts";

/** A replica's load at a fresh read (the routing state adds its own in-flight count). */
export interface ScrapedLoad {
  running: number;
  waiting: number;
  kvUsage: number | null;
  at: number;
}

/** How a scrape ended (`gateplane_engine_scrapes_total{result}`). */
export const SCRAPE_RESULTS = ["ok", "failed", "timeout", "invalid", "unsupported"] as const;
export type ScrapeResult = (typeof SCRAPE_RESULTS)[number];

/** One replica being scraped. */
export class ReplicaScrape {
  engine: "vllm" | "sglang" | null = null;
  state: EngineSignalState = "failed";
  error: string | null = null;
  load: ScrapedLoad | null = null;
  prefixHitRate: number | null = null;
  /** Whether `onLoad` was last given figures (so null is sent once when they go). */
  published = false;
  readonly results: Record<ScrapeResult, number> = { ok: 0, failed: 0, timeout: 0, invalid: 0, unsupported: 0 };
  timer: unknown = null;
  controller: AbortController | null = null;
  closed = false;
  #counters: PrefixCounters | null = null;

  constructor(
    readonly service: string,
    readonly id: string,
    readonly url: string,
    /** The service's `engine:`; null: detect. */
    readonly expected: "vllm" | "sglang" | null,
  ) {}

  /** Takes a good reading (`running` and `waiting` present). */
  take(reading: EngineReading, at: number): void {
    this.prefixHitRate = prefixHitRate(this.#counters, reading, this.prefixHitRate);
    this.#counters = reading.prefixCounters;
    this.engine = reading.engine;
    this.load = { running: reading.running!, waiting: reading.waiting!, kvUsage: reading.kvUsage, at };
    this.state = "fresh";
    this.error = null;
  }

  /**
   * The replica as the agent reports it (its state brought up to date by the caller): figures only
   * while fresh, so a stale number never looks current; the age of the last good read either way.
   */
  signals(now: number): EngineSignals {
    const fresh = this.state === "fresh";
    return {
      replica: this.id,
      engine: this.engine,
      state: this.state,
      running: fresh ? this.load!.running : null,
      waiting: fresh ? this.load!.waiting : null,
      kv_cache_usage: fresh ? this.load!.kvUsage : null,
      prefix_cache_hit_rate: fresh ? this.prefixHitRate : null,
      age_seconds: this.load ? Math.max(0, now - this.load.at) / 1000 : null,
      // The report's schema bounds the text (`schema/engine.ts`).
      error: this.error === null ? null : this.error.slice(0, 1000),
    };
  }
}
