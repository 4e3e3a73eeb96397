/**
 * @module
 * Admission control of one service in one proxy process: at most `limit` requests forwarded at
 * once; beyond it a request waits in a bounded queue (`size`) for at most `timeoutMs`, highest
 * priority class first and in arrival order within a class. The caller answers 429 when the queue
 * is full and 503 when a wait times out (`forward.ts`). Limits change in place with each document
 * (a new replica raises the limit and lets waiting requests in); requests keep the gate they were
 * admitted by. Time and timers are injected (`AdmissionClock`) so tests need no sleeping.
 */

/** A request waiting for a slot: exactly one of these is called, unless it is cancelled first. */
export interface AdmissionTicket {
  /** A slot is the request's: it must `release()` the gate when its exchange ends. */
  admitted(waitedMs: number): void;
  /** The wait passed `timeoutMs`. */
  expired(waitedMs: number): void;
}

export interface AdmissionClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const REAL_CLOCK: AdmissionClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** The priority classes, highest first; `default` for a request without (or with an unknown) class. */
export const CLASSES = 4;
export const DEFAULT_CLASS = 2;
const CLASS_NAMES = ["system", "interactive", "default", "bulk"];

/** The class named by a header value (case-insensitive); unknown or absent: `default`. */
export function priorityClass(value: string | string[] | undefined): number {
  if (typeof value !== "string") return DEFAULT_CLASS;
  const i = CLASS_NAMES.indexOf(value.trim().toLowerCase());
  return i < 0 ? DEFAULT_CLASS : i;
}

interface Waiter {
  readonly ticket: AdmissionTicket;
  readonly since: number;
  timer: unknown;
  /** Granted, expired or cancelled: skipped when met in a queue. */
  done: boolean;
}

export interface AdmissionLimits {
  /** Requests forwarded at once (in this process). */
  limit: number;
  /** Requests waiting at most (0: none wait, beyond the limit is refused at once). */
  size: number;
  timeoutMs: number;
}

export type Admitted = "admitted" | "full";

export class AdmissionGate {
  #limits: AdmissionLimits;
  readonly #clock: AdmissionClock;
  /** One FIFO per class: an array and the index of its head. */
  readonly #queues: Waiter[][] = Array.from({ length: CLASSES }, () => []);
  readonly #heads = new Array<number>(CLASSES).fill(0);
  #active = 0;
  #waiting = 0;

  constructor(limits: AdmissionLimits, clock: AdmissionClock = REAL_CLOCK) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get active(): number {
    return this.#active;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.#waiting;
  }

  get limits(): AdmissionLimits {
    return this.#limits;
  }

  /**
   * New bounds (a new document): waiting requests are let in up to the new limit, in a microtask —
   * not while the routing table that brought the bounds is still being built.
   */
  configure(limits: AdmissionLimits): void {
    this.#limits = limits;
    if (this.#waiting > 0) queueMicrotask(() => this.#grant());
  }

  /**
   * A slot at once (`admitted`: the caller goes on and later calls `release`), a place in the queue
   * (a waiter: the ticket hears back, `cancel` leaves), or neither (`full`). `priority`: read only
   * when the request must wait (the caller's header lookup is off the fast path).
   */
  acquire(ticket: AdmissionTicket, priority: () => number = () => DEFAULT_CLASS): Admitted | Waiter {
    if (this.#active < this.#limits.limit && this.#waiting === 0) {
      this.#active++;
      return "admitted";
    }
    if (this.#waiting >= this.#limits.size) return "full";
    const waiter: Waiter = { ticket, since: this.#clock.now(), timer: null, done: false };
    const c = priority();
    const queue = this.#queues[c]!;
    // Waiters that left stay in their array until met; while no slot frees, sweep them out here.
    if (queue.length - this.#heads[c]! > 2 * this.#limits.size + 16) {
      const live = queue.slice(this.#heads[c]).filter((w) => !w.done);
      queue.length = 0;
      queue.push(...live);
      this.#heads[c] = 0;
    }
    queue.push(waiter);
    this.#waiting++;
    waiter.timer = this.#clock.setTimer(() => this.#expire(waiter), this.#limits.timeoutMs);
    return waiter;
  }

  /** A waiting request leaves (its client went away). */
  cancel(waiter: Waiter): void {
    if (waiter.done) return;
    waiter.done = true;
    this.#waiting--;
    this.#clock.clearTimer(waiter.timer);
  }

  /** An admitted request is over: its slot goes to the next waiting one. */
  release(): void {
    this.#active--;
    this.#grant();
  }

  #expire(waiter: Waiter): void {
    if (waiter.done) return;
    waiter.done = true;
    this.#waiting--;
    waiter.ticket.expired(this.#clock.now() - waiter.since);
  }

  #grant(): void {
    while (this.#waiting > 0 && this.#active < this.#limits.limit) {
      const waiter = this.#next();
      if (!waiter) return;
      waiter.done = true;
      this.#waiting--;
      this.#clock.clearTimer(waiter.timer);
      this.#active++;
      waiter.ticket.admitted(this.#clock.now() - waiter.since);
    }
  }

  /** The first live waiter of the highest class; dead ones on the way are dropped. */
  #next(): Waiter | null {
    for (let c = 0; c < CLASSES; c++) {
      const queue = this.#queues[c]!;
      let head = this.#heads[c]!;
      while (head < queue.length && queue[head]!.done) head++;
      if (head < queue.length) {
        const waiter = queue[head]!;
        this.#heads[c] = head + 1;
        this.#compact(c);
        return waiter;
      }
      this.#heads[c] = 0;
      queue.length = 0;
    }
    return null;
  }

  #compact(c: number): void {
    const head = this.#heads[c]!;
    const queue = this.#queues[c]!;
    if (head >= 1024 && head * 2 >= queue.length) {
      queue.splice(0, head);
      this.#heads[c] = 0;
    }
  }
}

export type { Waiter as AdmissionWaiter };
