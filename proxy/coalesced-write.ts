/**
 * @module
 * A file rewritten after every change, where only the latest content matters (a last good state):
 * one write in flight at a time, and the changes that arrive meanwhile collapse into the one write
 * after it, of the latest value. The content is produced when the write starts, not per change, so a
 * burst of changes costs one serialisation, not one each.
 *
 * A write that may wait (`writeLater`: a configuration delta's, whose ACK does not wait for it)
 * starts no sooner than `spacing` times the last write's duration after it ended: rewriting a
 * 10 MB document is O(services), so under a stream of deltas the writes take at most
 * 1 / (1 + spacing) of the time (a tenth by default), however fast the deltas come, and the deltas
 * in between share one write. A `write` (a whole document, awaited) starts at once.
 */

/** Default `spacing`: a write waits 9 times the last one's duration, so writing takes at most a tenth of the time. */
export const WRITE_SPACING = 9;

export class CoalescedWrite<T> {
  readonly #write: (value: T) => Promise<void>;
  readonly #spacing: number;
  #pending: { value: T; done: Promise<void>; settle: (error: unknown) => void; now: boolean } | null = null;
  /** The loop writing while there is something to write; null when idle. */
  #draining: Promise<void> | null = null;
  /** When the next `writeLater` may start (ms, `performance.now()`). */
  #nextAt = 0;
  /** Ends the wait before a deferred write (a `write` arrived). */
  #wake: (() => void) | null = null;

  constructor(write: (value: T) => Promise<void>, options: { spacing?: number } = {}) {
    this.#write = write;
    this.#spacing = options.spacing ?? WRITE_SPACING;
  }

  /** Writes `value` after the write in flight; resolves once a write of it (or of a later value) ended, rejects if that one failed. */
  write(value: T): Promise<void> {
    return this.#enqueue(value, true);
  }

  /** `write`, but started no sooner than the spacing after the last write (the module's comment). */
  writeLater(value: T): Promise<void> {
    return this.#enqueue(value, false);
  }

  #enqueue(value: T, now: boolean): Promise<void> {
    if (this.#pending) {
      this.#pending.value = value;
      if (now && !this.#pending.now) {
        this.#pending.now = true;
        this.#wake?.();
      }
      return this.#pending.done;
    }
    let settle!: (error: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#pending = { value, done, settle, now };
    this.#draining ??= this.#drain();
    return done;
  }

  /** Resolves once nothing is written or waiting (never rejects). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const wait = this.#pending.now ? 0 : this.#nextAt - performance.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
      const { value, settle } = this.#pending!;
      this.#pending = null;
      const started = performance.now();
      try {
        await this.#write(value);
        settle(undefined);
      } catch (error) {
        settle(error ?? new Error("write failed"));
      }
      const ended = performance.now();
      this.#nextAt = ended + this.#spacing * (ended - started);
    }
    this.#draining = null;
  }
}
