/**
 * @module
 * Passive health shared by a host's proxy processes (docs/health.md): each child's balancer counts
 * its own requests' outcomes, and tells the others, through the parent, only what changes the
 * replica's state: every failure (carrying the ejection or breaker opening it caused, with their
 * end times), and the first success after failures or during an ejection (which readmits the
 * replica, and closes the breaker when it did here). Nothing is sent for a success that changes
 * nothing, so a healthy replica costs no message. A child's events of one event-loop turn leave in
 * one IPC message; the parent relays them to the other children at once
 * (`process-pool.ts`), which apply them (`Balancer.remoteFailed`, `remoteSucceeded`).
 */

/** A passive-health change of one replica in one process. */
export type PassiveEvent =
  | {
      kind: "failure";
      service: string;
      id: string;
      url: string;
      at: number;
      reason: string;
      /** The ejection this failure started (its begin and end, ejections in a row), or null. */
      ejection: { at: number; until: number; ejections: number } | null;
      /** Why the breaker opened on this failure (open from `at`), or null. */
      opened: string | null;
    }
  | {
      kind: "success";
      service: string;
      id: string;
      url: string;
      at: number;
      /** This success closed a half-open breaker (slow start from `at`). */
      closed: boolean;
    };

export const passiveKey = (e: { service: string; id: string; url: string }) =>
  `${e.service}\u0000${e.id}\u0000${e.url}`;

/** A child's outgoing events, one IPC message per event-loop turn. */
export class PassiveShare {
  readonly #send: (events: PassiveEvent[]) => void;
  #events: PassiveEvent[] = [];
  #scheduled = false;

  constructor(send: (events: PassiveEvent[]) => void) {
    this.#send = send;
  }

  readonly add = (event: PassiveEvent): void => {
    this.#events.push(event);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  };

  readonly #flush = (): void => {
    this.#scheduled = false;
    const events = this.#events;
    this.#events = [];
    try {
      this.#send(events);
    } catch {}
  };
}

/**
 * The parent's memory of ejections and open breakers still running, for a child that starts later
 * (it learns them with its first messages, as it learns the active checks' verdicts).
 */
export class PassiveMemory {
  readonly #out = new Map<string, PassiveEvent>();

  note(events: readonly PassiveEvent[]): void {
    for (const e of events) {
      const key = passiveKey(e);
      if (e.kind === "success") this.#out.delete(key);
      else if (e.ejection || e.opened) this.#out.set(key, e);
    }
  }

  /** Events of ejections or openings that may still hold at `now` (an open breaker's time is the child's to judge). */
  current(now: number, maxOpenMs: number): PassiveEvent[] {
    const out: PassiveEvent[] = [];
    for (const [key, e] of this.#out) {
      if (e.kind !== "failure") continue;
      if ((e.ejection && e.ejection.until > now) || (e.opened && e.at + maxOpenMs > now)) out.push(e);
      else this.#out.delete(key);
    }
    return out;
  }
}
