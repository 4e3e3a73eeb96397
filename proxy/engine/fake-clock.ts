/**
 * @module
 * A clock for tests of the engine scraper: time moves only when the test says, timers fire in order,
 * and the promises a fired timer started settle before the next one fires.
 */
import type { ScrapeClock } from "./scrape-clock.ts";

/** Lets every pending promise callback and I/O-free continuation run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FakeClock implements ScrapeClock {
  t = 1_000_000;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers pending now, soonest first (ms from now). */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at - this.t).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.#timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}
