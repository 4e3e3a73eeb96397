/**
 * @module
 * A file rewritten after every change, where only the latest content matters (a last good state):
 * one write in flight at a time, and the changes that arrive meanwhile collapse into the one write
 * after it, of the latest value. The content is produced when the write starts, not per change, so a
 * burst of changes costs one serialisation, not one each.
 */

export class CoalescedWrite<T> {
  readonly #write: (value: T) => Promise<void>;
  #pending: { value: T; done: Promise<void>; settle: (error: unknown) => void } | null = null;
  /** The loop writing while there is something to write; null when idle. */
  #draining: Promise<void> | null = null;

  constructor(write: (value: T) => Promise<void>) {
    this.#write = write;
  }

  /** Writes `value` after the write in flight; resolves once a write of it (or of a later value) ended, rejects if that one failed. */
  write(value: T): Promise<void> {
    if (this.#pending) {
      this.#pending.value = value;
      return this.#pending.done;
    }
    let settle!: (error: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    this.#pending = { value, done, settle };
    this.#draining ??= this.#drain();
    return done;
  }

  /** Resolves once nothing is written or waiting (never rejects). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const { value, settle } = this.#pending;
      this.#pending = null;
      try {
        await this.#write(value);
        settle(undefined);
      } catch (error) {
        settle(error ?? new Error("write failed"));
      }
    }
    this.#draining = null;
  }
}
