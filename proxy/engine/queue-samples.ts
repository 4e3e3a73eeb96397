/**
 * @module
 * The engines' waiting queues over the report's windows (`LlmWindow.queue`, `schema/llm-stats.ts`):
 * at every scrape tick of the host, the mean `waiting` over a service's replicas with fresh signals
 * is one sample. Kept per service in a ring of 5-s slots like the LLM windows' (`observe/llm-windows.ts`),
 * so a window covers the same slots as the distributions it rides beside.
 */
import { LLM_WINDOWS, type LlmWindowName } from "../../schema/llm-stats.ts";
import { SLOT_MS } from "../observe/llm-windows.ts";

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
