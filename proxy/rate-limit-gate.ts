/**
 * @module
 * Where a process gets its verdicts. nginx keeps limit_req zones in shared memory; Node processes
 * cannot share memory, so the buckets of the whole host live in one place, the parent process
 * (`process-pool.ts`), and its child processes ask it over their IPC channel. To keep that cheap,
 * every check a child makes during one event-loop turn travels in one message and comes back in one
 * answer (`ipc-batch.ts`, shared with the routing gate). The gate owns both messages
 * (`RateLimitAsk`, `RateLimitVerdicts`); `process-protocol.ts` only composes them.
 * Without child processes the server asks its own registry directly, synchronously.
 *
 * If the parent does not answer (it is gone, or stuck past `timeoutMs`), waiting requests are
 * admitted: rate limiting must never stop traffic on its own.
 */

import { IpcBatcher } from "./ipc-batch.ts";
import { hostMs, type Verdict, type ZoneRegistry, type ZoneSpec } from "./rate-limit-store.ts";

export interface RateLimitGate {
  /** Calls `done` with the zone's verdict (null: not limited), at once or after one round trip. */
  take(zone: ZoneSpec, key: string, done: (verdict: Verdict | null) => void): void;
  /** The zones of a new document (a local gate keeps its registry in step; a remote one has nothing to do). */
  retain(zones: Iterable<ZoneSpec>): void;
  /** The zones a delta's services have now (`added`) and had before (`dropped`, ids); `ZoneRegistry.retainChanged`. */
  retainChanged(added: Iterable<ZoneSpec>, dropped: Iterable<string>): void;
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

  retainChanged(added: Iterable<ZoneSpec>, dropped: Iterable<string>): void {
    this.registry.retainChanged(added, dropped);
  }
}

/** A child process's checks: the zone id, key and arrival time (`hostMs`) of each, in order. */
export interface RateLimitAsk {
  type: "rate-limit";
  id: number;
  zones: string[];
  keys: string[];
  times: number[];
}

/** The parent's answer to a `RateLimitAsk`: verdicts in the order asked (null: not limited). */
export interface RateLimitVerdicts {
  type: "rate-limit-verdicts";
  id: number;
  verdicts: (Verdict | null)[];
}

/** The buckets live in the parent process; checks are batched per event-loop turn (`ipc-batch.ts`). */
export class IpcGate implements RateLimitGate {
  readonly #batcher: IpcBatcher<{ zone: string; key: string; time: number }, Verdict | null>;
  readonly #now: () => number;

  /** `send` returns false when the channel is closed. */
  constructor(
    send: (message: RateLimitAsk) => boolean,
    timeoutMs: number,
    log: (line: string) => void,
    now: () => number = hostMs,
  ) {
    this.#now = now;
    this.#batcher = new IpcBatcher<{ zone: string; key: string; time: number }, Verdict | null>({
      send: (id, items) =>
        send({
          type: "rate-limit",
          id,
          zones: items.map((i) => i.zone),
          keys: items.map((i) => i.key),
          times: items.map((i) => i.time),
        }),
      timeoutMs,
      log,
      what: "the rate-limit store",
      meanwhile: "admitting requests unchecked meanwhile",
      fallback: null,
    });
  }

  take(zone: ZoneSpec, key: string, done: (verdict: Verdict | null) => void): void {
    this.#batcher.add({ zone: zone.id, key, time: this.#now() }, done);
  }

  retain(): void {}

  retainChanged(): void {}

  /** The parent's answer to one batch. */
  receive(message: RateLimitVerdicts): void {
    this.#batcher.receive(message.id, message.verdicts);
  }

  /** Admits everything still waiting (the parent went away). */
  release(): void {
    this.#batcher.release();
  }
}

/** The parent's side: answers one child's batch from the host's registry. */
export function answerAsk(registry: ZoneRegistry, ask: RateLimitAsk): RateLimitVerdicts {
  const verdicts: (Verdict | null)[] = new Array(ask.zones.length);
  for (let i = 0; i < ask.zones.length; i++) verdicts[i] = registry.take(ask.zones[i]!, ask.keys[i]!, ask.times[i]);
  return { type: "rate-limit-verdicts", id: ask.id, verdicts };
}
