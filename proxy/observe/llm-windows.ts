/**
 * @module
 * One service's LLM traffic over the report's windows (30, 60, 300 s; `schema/llm-stats.ts`), kept
 * in a ring of 60 slots of 5 s, each slot made when first used and reused five minutes later: at
 * most 60 × ~0.4 KiB per service and process, nothing for a service without traffic. A window is
 * the slots of its last N seconds, the current one included, so it covers between N − 5 and N
 * seconds (the agent reports every 5 s). Processes report these sums; the agent adds them up.
 */

import {
  DURATION_BOUNDS,
  type Histogram,
  LLM_WINDOWS,
  type LlmWindow,
  type LlmWindowName,
  TPOT_BOUNDS,
  TTFT_BOUNDS,
} from "../../schema/llm-stats.ts";
import type { ExchangeRecord } from "./exchange-record.ts";

export const SLOT_MS = 5_000;
const SLOTS = 60;

/** The bucket of `value` (seconds or tokens): the first bound it does not exceed, else the last (+Inf). */
export function bucketOf(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  return i;
}

class Slot {
  id = -1;
  readonly duration = new Uint32Array(DURATION_BOUNDS.length + 1);
  readonly ttft = new Uint32Array(TTFT_BOUNDS.length + 1);
  readonly tpot = new Uint32Array(TPOT_BOUNDS.length + 1);
  readonly itl = new Uint32Array(TPOT_BOUNDS.length + 1);
  /** Sums of duration, ttft, tpot, itl. */
  readonly sums = new Float64Array(4);
  errors = 0;
  input = 0;
  output = 0;
  estimated = 0;

  reset(id: number): void {
    this.id = id;
    this.duration.fill(0);
    this.ttft.fill(0);
    this.tpot.fill(0);
    this.itl.fill(0);
    this.sums.fill(0);
    this.errors = 0;
    this.input = 0;
    this.output = 0;
    this.estimated = 0;
  }
}

/** What one request adds to the windows: the fields of its record the windows read. */
export type WindowObservation = Pick<
  ExchangeRecord,
  "duration" | "ttft" | "tpot" | "itl" | "inputTokens" | "outputTokens" | "tokensEstimated"
>;

export class LlmRing {
  readonly #slots: (Slot | undefined)[] = new Array(SLOTS);

  #slot(nowMs: number): Slot {
    const id = Math.floor(nowMs / SLOT_MS);
    const index = id % SLOTS;
    let slot = this.#slots[index];
    if (!slot) {
      slot = new Slot();
      this.#slots[index] = slot;
    }
    if (slot.id !== id) slot.reset(id);
    return slot;
  }

  /**
   * One request, at `nowMs`: its duration when it `reached` a replica, its TTFT, TPOT and gaps when it
   * is an `llm` answer, its tokens, and whether it is an `error`.
   */
  record(o: WindowObservation, reached: boolean, llm: boolean, error: boolean, nowMs: number): void {
    const slot = this.#slot(nowMs);
    if (reached) {
      slot.duration[bucketOf(DURATION_BOUNDS, o.duration)]!++;
      slot.sums[0]! += o.duration;
    }
    if (llm && o.ttft !== null) {
      slot.ttft[bucketOf(TTFT_BOUNDS, o.ttft)]!++;
      slot.sums[1]! += o.ttft;
    }
    if (llm && o.tpot !== null) {
      slot.tpot[bucketOf(TPOT_BOUNDS, o.tpot)]!++;
      slot.sums[2]! += o.tpot;
    }
    if (llm) {
      for (const gap of o.itl) {
        slot.itl[bucketOf(TPOT_BOUNDS, gap)]!++;
        slot.sums[3]! += gap;
      }
    }
    if (error) slot.errors++;
    if (o.inputTokens !== null) slot.input += o.inputTokens;
    if (o.outputTokens !== null) {
      slot.output += o.outputTokens;
      if (o.tokensEstimated) slot.estimated += o.outputTokens;
    }
  }

  /** Each window's sums; a window without anything in it is left out. */
  windows(nowMs: number): Partial<Record<LlmWindowName, LlmWindow>> {
    const now = Math.floor(nowMs / SLOT_MS);
    const out: Partial<Record<LlmWindowName, LlmWindow>> = {};
    for (const name of LLM_WINDOWS) {
      const span = Number(name) / (SLOT_MS / 1000);
      const w = emptyWindow();
      let any = false;
      for (const slot of this.#slots) {
        if (!slot || slot.id < 0) continue;
        const age = now - slot.id;
        if (age < 0 || age >= span) continue;
        any = true;
        add(w.duration, slot.duration, slot.sums[0]!);
        add(w.ttft, slot.ttft, slot.sums[1]!);
        add(w.tpot, slot.tpot, slot.sums[2]!);
        add(w.itl, slot.itl, slot.sums[3]!);
        w.errors += slot.errors;
        w.tokens.input += slot.input;
        w.tokens.output += slot.output;
        w.tokens.estimated_output += slot.estimated;
      }
      if (any && !isEmpty(w)) out[name] = trimWindow(w);
    }
    return out;
  }
}

function add(into: Histogram, counts: Uint32Array, sum: number): void {
  for (let i = 0; i < counts.length; i++) into.counts[i] = (into.counts[i] ?? 0) + counts[i]!;
  into.sum += sum;
}

export function emptyWindow(): LlmWindow {
  const h = () => ({ counts: [], sum: 0 });
  return {
    duration: h(),
    ttft: h(),
    tpot: h(),
    itl: h(),
    errors: 0,
    tokens: { input: 0, output: 0, estimated_output: 0 },
  };
}

const total = (h: Histogram) => h.counts.reduce((a, b) => a + b, 0);

function isEmpty(w: LlmWindow): boolean {
  return (
    total(w.duration) + total(w.ttft) + total(w.tpot) + total(w.itl) === 0 &&
    w.errors === 0 &&
    w.tokens.input + w.tokens.output === 0
  );
}

/** Trailing zero buckets left out (the wire allows it; most windows are sparse). */
function trim(h: Histogram): Histogram {
  let end = h.counts.length;
  while (end > 0 && h.counts[end - 1] === 0) end--;
  return { counts: h.counts.slice(0, end), sum: h.sum };
}

export function trimWindow(w: LlmWindow): LlmWindow {
  return { ...w, duration: trim(w.duration), ttft: trim(w.ttft), tpot: trim(w.tpot), itl: trim(w.itl) };
}
