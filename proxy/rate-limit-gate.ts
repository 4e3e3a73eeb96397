/**
 * @module
 * Where a process gets its verdicts. nginx keeps limit_req zones in shared memory; Node processes
 * cannot share memory, so the buckets of the whole host live in one place, the parent process
 * (`workers.ts`), and workers ask it over their IPC channel. To keep that cheap, every check a
 * worker makes during one event-loop turn travels in one message and comes back in one answer.
 * Without workers the server asks its own registry directly, synchronously.
 *
 * If the parent does not answer (it is gone, or stuck past `timeoutMs`), waiting requests are
 * admitted: rate limiting must never stop traffic on its own.
 */

import { hostMs, type Verdict, type ZoneRegistry, type ZoneSpec } from "./rate-limit-store.ts";
import type { ToWorker } from "./worker-protocol.ts";

export interface RateLimitGate {
  /** Calls `done` with the zone's verdict (null: not limited), at once or after one round trip. */
  take(zone: ZoneSpec, key: string, done: (verdict: Verdict | null) => void): void;
  /** The zones of a new document (a local gate keeps its registry in step; a remote one has nothing to do). */
  retain(zones: Iterable<ZoneSpec>): void;
}

/** The buckets live in this process. */
export class LocalGate implements RateLimitGate {
  readonly registry: ZoneRegistry;

  constructor(registry: ZoneRegistry) {
    this.registry = registry;
  }

  take(zone: ZoneSpec, key: string, done: (verdict: Verdict | null) => void): void {
    done(this.registry.take(zone.id, key));
  }

  retain(zones: Iterable<ZoneSpec>): void {
    this.registry.retain(zones);
  }
}

/** A worker's request: the zone id, key and arrival time (`hostMs`) of each check, in order. */
export interface RateLimitAsk {
  type: "rate-limit";
  id: number;
  zones: string[];
  keys: string[];
  times: number[];
}

interface Batch {
  done: ((verdict: Verdict | null) => void)[];
  timer: NodeJS.Timeout;
}

/** The buckets live in the parent process; checks are batched per event-loop turn. */
export class IpcGate implements RateLimitGate {
  readonly #send: (message: RateLimitAsk) => boolean;
  readonly #timeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  #zones: string[] = [];
  #keys: string[] = [];
  #times: number[] = [];
  #done: ((verdict: Verdict | null) => void)[] = [];
  #scheduled = false;
  #nextId = 1;
  readonly #pending = new Map<number, Batch>();
  #warned = false;

  /** `send` returns false when the channel is closed. */
  constructor(
    send: (message: RateLimitAsk) => boolean,
    timeoutMs: number,
    log: (line: string) => void,
    now: () => number = hostMs,
  ) {
    this.#send = send;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
    this.#now = now;
  }

  take(zone: ZoneSpec, key: string, done: (verdict: Verdict | null) => void): void {
    this.#zones.push(zone.id);
    this.#keys.push(key);
    this.#times.push(this.#now());
    this.#done.push(done);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  retain(): void {}

  readonly #flush = (): void => {
    this.#scheduled = false;
    const id = this.#nextId++;
    const done = this.#done;
    const message: RateLimitAsk = { type: "rate-limit", id, zones: this.#zones, keys: this.#keys, times: this.#times };
    this.#zones = [];
    this.#keys = [];
    this.#times = [];
    this.#done = [];
    const timer = setTimeout(() => this.#admit(id, "did not answer in time"), this.#timeoutMs);
    timer.unref();
    this.#pending.set(id, { done, timer });
    let sent = false;
    try {
      sent = this.#send(message);
    } catch {}
    if (!sent) this.#admit(id, "is unreachable");
  };

  /** The parent's answer to one batch. */
  receive(message: Extract<ToWorker, { type: "rate-limit-verdicts" }>): void {
    const batch = this.#pending.get(message.id);
    if (!batch) return;
    this.#pending.delete(message.id);
    clearTimeout(batch.timer);
    this.#warned = false;
    for (let i = 0; i < batch.done.length; i++) batch.done[i]!(message.verdicts[i] ?? null);
  }

  /** Admits everything still waiting (the parent went away). */
  release(): void {
    for (const id of [...this.#pending.keys()]) this.#admit(id, "went away");
  }

  #admit(id: number, why: string): void {
    const batch = this.#pending.get(id);
    if (!batch) return;
    this.#pending.delete(id);
    clearTimeout(batch.timer);
    if (!this.#warned) {
      this.#warned = true;
      this.#log(`proxy: the rate-limit store ${why}; admitting requests unchecked meanwhile`);
    }
    for (const done of batch.done) done(null);
  }
}

/** The parent's side: answers one worker's batch from the host's registry. */
export function answerAsk(
  registry: ZoneRegistry,
  ask: RateLimitAsk,
): Extract<ToWorker, { type: "rate-limit-verdicts" }> {
  const verdicts: (Verdict | null)[] = new Array(ask.zones.length);
  for (let i = 0; i < ask.zones.length; i++) verdicts[i] = registry.take(ask.zones[i]!, ask.keys[i]!, ask.times[i]);
  return { type: "rate-limit-verdicts", id: ask.id, verdicts };
}
