/**
 * @module
 * The engines' waiting queues over the report's windows (`LlmWindow.queue`, `schema/llm-stats.ts`):
 * at every scrape tick of the host, the mean `waiting` over a service's replicas with fresh signals
 * is one sample. Kept per service in a ring of 5-s slots like the LLM windows' (`observe/llm-windows.ts`),
 * so a window covers the same slots as the distributions it rides beside. {@link QueueSampler} is the
 * tick that takes the samples, on the scraper's clock and interval.
 */
import { LLM_WINDOWS, type LlmWindowName } from "../../schema/llm-stats.ts";
import { SLOT_MS } from "../observe/llm-windows.ts";
import type { ScrapeClock } from "./scrape-clock.ts";

const SLOTS = 60;

export interface QueueWindow {
  waiting: number;
  samples: number;
}

class Ring {
  readonly ids = new Float64Array(SLOTS).fill(-1);
  readonly waiting = new Float64Array(SLOTS);
  readonly samples = new Uint32Array(SLOTS);
}

export class QueueSamples {
  readonly #rings = new Map<string, Ring>();

  add(service: string, waiting: number, nowMs: number): void {
    let ring = this.#rings.get(service);
    if (!ring) {
      ring = new Ring();
      this.#rings.set(service, ring);
    }
    const id = Math.floor(nowMs / SLOT_MS);
    const i = id % SLOTS;
    if (ring.ids[i] !== id) {
      ring.ids[i] = id;
      ring.waiting[i] = 0;
      ring.samples[i] = 0;
    }
    ring.waiting[i]! += waiting;
    ring.samples[i]!++;
  }

  /** The windows with samples (the current slot included); absent windows had none. */
  windows(service: string, nowMs: number): Partial<Record<LlmWindowName, QueueWindow>> {
    const ring = this.#rings.get(service);
    const out: Partial<Record<LlmWindowName, QueueWindow>> = {};
    if (!ring) return out;
    const current = Math.floor(nowMs / SLOT_MS);
    for (const name of LLM_WINDOWS) {
      const slots = Number(name) / (SLOT_MS / 1000);
      let waiting = 0;
      let samples = 0;
      for (let i = 0; i < SLOTS; i++) {
        const age = current - ring.ids[i]!;
        if (age < 0 || age >= slots) continue;
        waiting += ring.waiting[i]!;
        samples += ring.samples[i]!;
      }
      if (samples > 0) out[name] = { waiting, samples };
    }
    return out;
  }

  /** Forgets services no longer scraped. */
  retain(services: ReadonlySet<string>): void {
    for (const name of this.#rings.keys()) if (!services.has(name)) this.#rings.delete(name);
  }
}

/** What the sampler reads of the scraper at each tick. */
export interface QueueSource {
  /** `[service, waiting]` of every replica whose signals are fresh at `now` (states brought up to date). */
  freshWaiting(now: number): Iterable<readonly [string, number]>;
  /** The services still scraped: the others' rings are dropped. */
  services(): ReadonlySet<string>;
  /** Whether any replica is scraped: without one the tick stops until {@link QueueSampler.start}. */
  active(): boolean;
}

/**
 * One sample per interval of each service's mean waiting over its fresh replicas. A mean rather
 * than a sum so the autoscaler's target reads per replica, whatever the replica count.
 */
export class QueueSampler {
  readonly #samples = new QueueSamples();
  #timer: unknown = null;
  #closed = false;

  constructor(
    private readonly clock: ScrapeClock,
    private readonly intervalMs: number,
    private readonly source: QueueSource,
  ) {}

  /** Starts the tick if it is not running (a document brought replicas). */
  start(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = this.clock.setTimeout(() => this.#tick(), this.intervalMs);
  }

  windows(service: string): Partial<Record<LlmWindowName, QueueWindow>> {
    return this.#samples.windows(service, this.clock.now());
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    this.#timer = null;
    if (this.#closed) return;
    const now = this.clock.now();
    const sums = new Map<string, { waiting: number; n: number }>();
    for (const [service, waiting] of this.source.freshWaiting(now)) {
      const s = sums.get(service) ?? { waiting: 0, n: 0 };
      s.waiting += waiting;
      s.n++;
      sums.set(service, s);
    }
    for (const [service, s] of sums) this.#samples.add(service, s.waiting / s.n, now);
    this.#samples.retain(this.source.services());
    if (this.source.active()) this.start();
  }
}
