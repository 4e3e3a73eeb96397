/**
 * @module
 * A child process's questions to its parent, batched: everything asked during one event-loop turn
 * travels in one IPC message (a message costs a serialization and a wake-up on both sides, whatever
 * its size) and comes back in one answer, in order. The parent holds what must be one per host
 * (rate-limit buckets, routing state); Node processes cannot share memory.
 *
 * The parent may be gone or stuck: a batch not answered within `timeoutMs` gets the caller's
 * fallback answer, logged once per outage (the first answer in time ends it). An answer that comes
 * after its batch gave up goes to `late`, for callers that must undo what the parent did.
 */

export interface BatcherOptions<Item, Answer> {
  /** Sends one batch; false when the channel is closed. `items` may be empty (see `schedule`). */
  send: (id: number, items: Item[]) => boolean;
  timeoutMs: number;
  log: (line: string) => void;
  /** Subject of the outage log line, e.g. "the rate-limit store". */
  what: string;
  /** What happens meanwhile, e.g. "admitting requests unchecked meanwhile". */
  meanwhile: string;
  /** The answer of every item of a batch the parent did not answer. */
  fallback: Answer;
  /** The answers of a batch that had already fallen back. */
  late?: (answers: readonly Answer[]) => void;
}

interface Batch<Answer> {
  done: ((answer: Answer) => void)[];
  timer: NodeJS.Timeout;
}

export class IpcBatcher<Item, Answer> {
  readonly #options: BatcherOptions<Item, Answer>;
  #items: Item[] = [];
  #done: ((answer: Answer) => void)[] = [];
  #scheduled = false;
  #nextId = 1;
  readonly #pending = new Map<number, Batch<Answer>>();
  #warned = false;

  constructor(options: BatcherOptions<Item, Answer>) {
    this.#options = { ...options };
  }

  /** How long a batch waits for its answer from now on (the process's settings arrive after it is made). */
  set timeoutMs(ms: number) {
    this.#options.timeoutMs = ms;
  }

  /** Asks `item` in this turn's batch; `done` gets the parent's answer or the fallback. */
  add(item: Item, done: (answer: Answer) => void): void {
    this.#items.push(item);
    this.#done.push(done);
    this.schedule();
  }

  /** Makes sure a batch leaves at the end of this turn, even with no item (for what `send` adds). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const id = this.#nextId++;
    const items = this.#items;
    const done = this.#done;
    this.#items = [];
    this.#done = [];
    if (done.length > 0) {
      const timer = setTimeout(() => this.#fallBack(id, "did not answer in time"), this.#options.timeoutMs);
      timer.unref();
      this.#pending.set(id, { done, timer });
    }
    let sent = false;
    try {
      sent = this.#options.send(id, items);
    } catch {}
    if (!sent) this.#fallBack(id, "is unreachable");
  };

  /** The parent's answers to batch `id`, in the order asked. */
  receive(id: number, answers: readonly Answer[]): void {
    const batch = this.#pending.get(id);
    if (!batch) {
      // The parent answers each batch once, so one that is no longer pending fell back already.
      this.#options.late?.(answers);
      return;
    }
    this.#pending.delete(id);
    clearTimeout(batch.timer);
    this.#warned = false;
    for (let i = 0; i < batch.done.length; i++) batch.done[i]!(answers[i] ?? this.#options.fallback);
  }

  /** Everything still waiting falls back (the parent went away). */
  release(): void {
    for (const id of [...this.#pending.keys()]) this.#fallBack(id, "went away");
  }

  #fallBack(id: number, why: string): void {
    const batch = this.#pending.get(id);
    if (!batch) return;
    this.#pending.delete(id);
    clearTimeout(batch.timer);
    if (!this.#warned) {
      this.#warned = true;
      this.#options.log(`proxy: ${this.#options.what} ${why}; ${this.#options.meanwhile}`);
    }
    for (const done of batch.done) done(this.#options.fallback);
  }
}
