/**
 * @module
 * Traffic counters per service, as dstack's collector computes them from nginx's access log: over
 * the last 30, 60 and 300 seconds, how many requests reached a replica and their mean duration.
 * Kept in one-second buckets in a fixed ring, so memory per service is constant whatever the load.
 * Processes report raw sums; means are taken only after summing across processes. Beside them, each
 * window may carry the LLM distributions of the metrics registry (`observe/llm-windows.ts`), whose
 * buckets add up across processes the same way.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { EngineSignals } from "../schema/engine.ts";
import { type ReplicaHealth, worseHealth } from "../schema/health.ts";
import type { LlmWindow, LlmWindowName } from "../schema/llm-stats.ts";
import { addLlmWindow } from "../schema/traffic.ts";
import type { QueueWindow } from "./engine/queue-samples.ts";
import { emptyWindow, trimWindow } from "./observe/llm-windows.ts";

export const STATS_WINDOWS = [30, 60, 300] as const;
const RING = 300;

/** Sums over one window: the wire format between processes (means come later). */
export interface RawWindow {
  requests: number;
  seconds: number;
}
export interface RawServiceStats {
  service: string;
  windows: Record<"30" | "60" | "300", RawWindow>;
  /** The windows with LLM traffic (absent when metrics are off or none had any). */
  llm?: Partial<Record<LlmWindowName, LlmWindow>>;
  /** Each replica's health as this process sees it (`Balancer.report`); the report keeps the worst per replica. */
  health?: ReplicaHealth[];
}

/** One service's ring of one-second buckets. */
const EMPTY_COUNT = new Uint32Array(0);
const EMPTY_TOTAL = new Float64Array(0);

export class RequestCounter {
  // 6 KiB of rings, made on the first request: most of a 10,000-service gateway's services are
  // idle in any one process, and an idle service must not cost its rings (issue 17's memory target).
  #second: Float64Array | null = null;
  #count = EMPTY_COUNT;
  #total = EMPTY_TOTAL;

  /** Counts one request that took `seconds` and ended at `nowMs`. */
  record(seconds: number, nowMs: number): void {
    if (this.#second === null) {
      this.#second = new Float64Array(RING).fill(-1);
      this.#count = new Uint32Array(RING);
      this.#total = new Float64Array(RING);
    }
    const second = Math.floor(nowMs / 1000);
    const slot = second % RING;
    if (this.#second[slot] !== second) {
      this.#second[slot] = second;
      this.#count[slot] = 0;
      this.#total[slot] = 0;
    }
    this.#count[slot]!++;
    this.#total[slot]! += seconds;
  }

  /** Sums over each window, the current second included. */
  windows(nowMs: number): RawServiceStats["windows"] {
    const now = Math.floor(nowMs / 1000);
    const out = {
      "30": { requests: 0, seconds: 0 },
      "60": { requests: 0, seconds: 0 },
      "300": { requests: 0, seconds: 0 },
    };
    if (this.#second === null) return out;
    for (let slot = 0; slot < RING; slot++) {
      const age = now - this.#second[slot]!;
      if (age < 0 || age >= RING) continue;
      const count = this.#count[slot]!;
      const total = this.#total[slot]!;
      for (const w of STATS_WINDOWS) {
        if (age < w) {
          out[w].requests += count;
          out[w].seconds += total;
        }
      }
    }
    return out;
  }
}

/** Counters by service name, following the services of the current document. */
export class StatsRegistry {
  readonly #counters = new Map<string, RequestCounter>();

  /** The counter for a service (created on first use). */
  counter(service: string): RequestCounter {
    let counter = this.#counters.get(service);
    if (!counter) {
      counter = new RequestCounter();
      this.#counters.set(service, counter);
    }
    return counter;
  }

  /** Forgets services that left the document (requests still running on them count into nothing). */
  retain(services: ReadonlySet<string>): void {
    for (const name of this.#counters.keys()) if (!services.has(name)) this.#counters.delete(name);
  }

  /** Forgets the services a delta removed. */
  forget(services: Iterable<string>): void {
    for (const name of services) this.#counters.delete(name);
  }

  /** Every service's sums; `llm`: the LLM windows by service (the metrics registry's). */
  snapshot(nowMs: number, llm?: ReadonlyMap<string, Partial<Record<LlmWindowName, LlmWindow>>>): RawServiceStats[] {
    return [...this.#counters].map(([service, counter]) => {
      const windows = llm?.get(service);
      return windows
        ? { service, windows: counter.windows(nowMs), llm: windows }
        : { service, windows: counter.windows(nowMs) };
    });
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** What the host's engine scraper adds to a service's report (`engine/scraper.ts`). */
export interface EngineReport {
  /** Its replicas' signals; null: its engines are not scraped. */
  signals(service: string): EngineSignals[] | null;
  /** The engines' queue samples by window (`LlmWindow.queue`). */
  queue(service: string): Partial<Record<LlmWindowName, QueueWindow>>;
}

/**
 * Sums raw snapshots from every process into the agent's report: one entry per service of the
 * current document (zeros for a service without traffic, as dstack reports), mean times in seconds
 * to three decimals; with `engines`, the replicas' engine signals and the queue samples (a window
 * with queue samples but no LLM traffic carries them in an otherwise empty LLM window).
 */
export function summarizeStats(
  services: readonly string[],
  snapshots: readonly RawServiceStats[][],
  engines?: EngineReport,
): ServiceStats[] {
  const sums = new Map<string, RawServiceStats["windows"]>();
  const health = new Map<string, Map<string, ReplicaHealth>>();
  const llm = new Map<string, Partial<Record<LlmWindowName, LlmWindow>>>();
  for (const name of services) {
    sums.set(name, {
      "30": { requests: 0, seconds: 0 },
      "60": { requests: 0, seconds: 0 },
      "300": { requests: 0, seconds: 0 },
    });
  }
  for (const snapshot of snapshots) {
    for (const entry of snapshot) {
      const sum = sums.get(entry.service);
      if (!sum) continue;
      if (entry.health) {
        let replicas = health.get(entry.service);
        if (!replicas) {
          replicas = new Map();
          health.set(entry.service, replicas);
        }
        for (const h of entry.health) {
          const seen = replicas.get(h.replica);
          replicas.set(h.replica, seen ? worseHealth(seen, h) : h);
        }
      }
      for (const w of ["30", "60", "300"] as const) {
        sum[w].requests += entry.windows[w].requests;
        sum[w].seconds += entry.windows[w].seconds;
        const from = entry.llm?.[w];
        if (!from) continue;
        let windows = llm.get(entry.service);
        if (!windows) {
          windows = {};
          llm.set(entry.service, windows);
        }
        const total = windows[w] ?? emptyWindow();
        addLlmWindow(total, from);
        windows[w] = total;
      }
    }
  }
  return [...sums].map(([service, w]): ServiceStats => {
    const distributions = llm.get(service);
    const queue = engines?.queue(service);
    const window = (name: LlmWindowName) => {
      const out = {
        requests: w[name].requests,
        request_time: w[name].requests ? round3(w[name].seconds / w[name].requests) : 0,
      };
      let extra = distributions?.[name];
      const q = queue?.[name];
      if (q) {
        extra ??= emptyWindow();
        extra.queue = { waiting: q.waiting, samples: q.samples };
      }
      return extra ? { ...out, llm: trimWindow(extra) } : out;
    };
    const stats: ServiceStats = { service, windows: { "30": window("30"), "60": window("60"), "300": window("300") } };
    const signals = engines?.signals(service);
    if (signals) stats.engine = signals;
    const replicas = health.get(service);
    if (replicas && replicas.size > 0) stats.health = [...replicas.values()];
    return stats;
  });
}
