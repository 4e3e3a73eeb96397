/**
 * @module
 * Requests held for a service scaled to zero (its document's `hold`): each waits, up to the
 * service's timeout, for a document in which the service has a replica, then goes on through the
 * normal path. The queue is bounded per service and in total, so a flood costs a bounded number of
 * parked sockets; beyond it the caller answers 503 at once. Bodies are not read while held: the
 * request stream stays paused, so the kernel's and Node's socket buffers (about 16 KiB on our side)
 * are all a held upload costs, and TCP backpressure stalls the client.
 *
 * The first request held for a service (and again at most every `signalIntervalMs` while requests
 * keep arriving, in case a signal was lost) calls `signal(service)`: the agent tells the control
 * plane, which asks the orchestrator for a replica.
 */
import type { ServerResponse } from "node:http";
import type { RoutingTable, ServiceRoute } from "./routes.ts";

export interface HoldLimits {
  /** Requests held at once for one service. */
  perService: number;
  /** Requests held at once in this process, all services together. */
  total: number;
  /** Least time between two signals for one service. */
  signalIntervalMs: number;
}

export const DEFAULT_HOLD_LIMITS: HoldLimits = { perService: 1_000, total: 4_000, signalIntervalMs: 5_000 };

/** How a held request's wait ended: the caller resumes it, answers 503, or forgets it. */
export type HoldEnd = { kind: "resume"; table: RoutingTable } | { kind: "expired" } | { kind: "gone" };

interface Held {
  readonly service: string;
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout;
  readonly done: (end: HoldEnd) => void;
  readonly onClose: () => void;
}

export type HoldOutcome = "held" | "full";

export class HoldQueue {
  readonly #limits: HoldLimits;
  readonly #signal: (service: string) => void;
  readonly #byService = new Map<string, Set<Held>>();
  readonly #signalledAt = new Map<string, number>();
  #total = 0;

  constructor(limits: HoldLimits, signal: (service: string) => void) {
    this.#limits = limits;
    this.#signal = signal;
  }

  /** Requests held now (all services, or one). */
  size(service?: string): number {
    return service === undefined ? this.#total : (this.#byService.get(service)?.size ?? 0);
  }

  /**
   * Parks a request for `route` (which has no replica and a hold timeout). `done` is called once:
   * with the first table in which the service has a replica (or is gone, or no longer held), when
   * the timeout passes first, or when the client goes away. Not called when the answer is "full".
   */
  hold(route: ServiceRoute, res: ServerResponse, done: (end: HoldEnd) => void): HoldOutcome {
    const service = route.name;
    const timeoutMs = route.holdTimeoutMs ?? 0;
    let set = this.#byService.get(service);
    if (this.#total >= this.#limits.total || (set?.size ?? 0) >= this.#limits.perService || timeoutMs <= 0) {
      return "full";
    }
    if (!set) {
      set = new Set();
      this.#byService.set(service, set);
    }
    const entry: Held = {
      service,
      res,
      done,
      timer: setTimeout(() => {
        if (this.#remove(entry)) done({ kind: "expired" });
      }, timeoutMs),
      onClose: () => {
        if (this.#remove(entry)) done({ kind: "gone" });
      },
    };
    set.add(entry);
    this.#total++;
    res.once("close", entry.onClose);
    this.signal(service);
    return "held";
  }

  /** Tells the control plane (rate-limited per service) that traffic waits for `service`. */
  signal(service: string): void {
    const now = Date.now();
    const last = this.#signalledAt.get(service);
    if (last !== undefined && now - last < this.#limits.signalIntervalMs) return;
    this.#signalledAt.set(service, now);
    this.#signal(service);
  }

  /** Called with each new table: requests whose service can now be served (or answered) go on. */
  release(table: RoutingTable): void {
    const byName = table.byName;
    for (const service of this.#signalledAt.keys()) if (!byName.has(service)) this.#signalledAt.delete(service);
    if (this.#total === 0) return;
    for (const [service, set] of [...this.#byService]) {
      const route = byName.get(service);
      const waiting = route !== undefined && route.balancer.replicas.length === 0 && route.holdTimeoutMs !== null;
      if (waiting) continue;
      for (const entry of [...set]) if (this.#remove(entry)) entry.done({ kind: "resume", table });
    }
  }

  /** The process is closing: every held request gets its timeout answer now. */
  expireAll(): void {
    for (const set of [...this.#byService.values()]) {
      for (const entry of [...set]) if (this.#remove(entry)) entry.done({ kind: "expired" });
    }
  }

  #remove(entry: Held): boolean {
    const set = this.#byService.get(entry.service);
    if (!set?.delete(entry)) return false;
    if (set.size === 0) this.#byService.delete(entry.service);
    this.#total--;
    clearTimeout(entry.timer);
    entry.res.off("close", entry.onClose);
    return true;
  }
}
