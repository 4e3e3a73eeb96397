/**
 * @module
 * A replica's circuit breaker (SMG's, plus the error rate SMG declares and never reads): `closed`
 * until `consecutiveFailures` failures in a row, or a share of failures of at least `errorRate` among
 * at least `minRequests` outcomes within `windowMs` (ten buckets); then `open` for `openMs` (no
 * traffic), then `half_open`: one request at a time (the balancer admits a half-open replica only
 * while it has none in flight); `halfOpenSuccesses` in a row close it, any failure opens it again.
 * Time is a parameter: tests drive it.
 */
import type { CircuitState } from "../../schema/health.ts";

export interface BreakerSettings {
  consecutiveFailures: number;
  errorRate: number;
  minRequests: number;
  windowMs: number;
  openMs: number;
  halfOpenSuccesses: number;
}

const BUCKETS = 10;

export class CircuitBreaker {
  readonly settings: BreakerSettings;
  #state: CircuitState = "closed";
  #consecutive = 0;
  #openedAt = 0;
  #halfOpenOk = 0;
  /** Times it opened (the metrics' counter). */
  opens = 0;
  /** Why it last opened. */
  reason: string | null = null;
  /**
   * The window's buckets, made at the first outcome (a host holds a breaker per replica, most of
   * which see no traffic): outcomes at [0, BUCKETS), failures at [BUCKETS, 2 BUCKETS), and at
   * [2 BUCKETS, 3 BUCKETS) the bucket index (time / bucket length) each slot last held.
   */
  #buckets: Float64Array | null = null;

  constructor(settings: BreakerSettings) {
    this.settings = settings;
  }

  /** The state at `now` (an open breaker whose time ran out is half-open). */
  state(now: number): CircuitState {
    if (this.#state === "open" && now - this.#openedAt >= this.settings.openMs) {
      this.#state = "half_open";
      this.#halfOpenOk = 0;
    }
    return this.#state;
  }

  /** When an open breaker turns half-open (ms), 0 when not open. */
  get opensUntil(): number {
    return this.#state === "open" ? this.#openedAt + this.settings.openMs : 0;
  }

  /** Returns true when this success closed a half-open breaker. */
  success(now: number): boolean {
    this.#consecutive = 0;
    this.#count(now, false);
    if (this.state(now) !== "half_open") return false;
    if (++this.#halfOpenOk < this.settings.halfOpenSuccesses) return false;
    this.#state = "closed";
    this.reason = null;
    this.#clear();
    return true;
  }

  /** Returns true when this failure opened the breaker. */
  failure(now: number, what: string): boolean {
    this.#consecutive++;
    this.#count(now, true);
    const state = this.state(now);
    if (state === "open") return false;
    if (state === "half_open") return this.#open(now, `a half-open probe failed (${what})`);
    const s = this.settings;
    if (this.#consecutive >= s.consecutiveFailures)
      return this.#open(now, `${this.#consecutive} failures in a row (last: ${what})`);
    const [requests, failures] = this.#window(now);
    if (requests >= s.minRequests && failures / requests >= s.errorRate)
      return this.#open(now, `${failures} of ${requests} requests failed in ${s.windowMs / 1000}s (last: ${what})`);
    return false;
  }

  /**
   * A failure another process of the host saw: it counts toward the failures in a row (so
   * `consecutiveFailures` is the host's), not toward the error rate (whose window needs every
   * success, which the processes do not share). Returns true when it opened the breaker here.
   */
  remoteFailure(now: number, what: string): boolean {
    this.#consecutive++;
    const s = this.settings;
    if (this.state(now) !== "closed" || this.#consecutive < s.consecutiveFailures) return false;
    this.openFrom(now, `${this.#consecutive} failures in a row on this host (last: ${what})`);
    return true;
  }

  /** A success another process saw after failures: the failures in a row end. */
  remoteSuccess(): void {
    this.#consecutive = 0;
  }

  /**
   * Another process of the host opened its breaker at `at` (`passive-share.ts`): this one is open
   * until the same time (not counted in `opens`, which the host sums over processes).
   */
  openFrom(at: number, reason: string): void {
    this.#state = "open";
    this.#openedAt = at;
    this.reason = reason;
  }

  /** Another process closed its breaker; returns true when this one was not closed. */
  closeFrom(now: number): boolean {
    if (this.state(now) === "closed") return false;
    this.#state = "closed";
    this.reason = null;
    this.#consecutive = 0;
    this.#clear();
    return true;
  }

  #open(now: number, reason: string): boolean {
    this.#state = "open";
    this.#openedAt = now;
    this.opens++;
    this.reason = reason;
    return true;
  }

  #clear(): void {
    this.#buckets = null;
  }

  #count(now: number, failed: boolean): void {
    this.#buckets ??= new Float64Array(3 * BUCKETS).fill(-1, 2 * BUCKETS);
    const buckets = this.#buckets;
    const index = Math.floor(now / (this.settings.windowMs / BUCKETS));
    const i = index % BUCKETS;
    if (buckets[2 * BUCKETS + i] !== index) {
      buckets[2 * BUCKETS + i] = index;
      buckets[i] = 0;
      buckets[BUCKETS + i] = 0;
    }
    buckets[i]!++;
    if (failed) buckets[BUCKETS + i]!++;
  }

  /** Outcomes and failures within the window ending at `now`. */
  #window(now: number): [number, number] {
    const buckets = this.#buckets;
    if (!buckets) return [0, 0];
    const index = Math.floor(now / (this.settings.windowMs / BUCKETS));
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (buckets[2 * BUCKETS + i]! <= index - BUCKETS) continue;
      requests += buckets[i]!;
      failures += buckets[BUCKETS + i]!;
    }
    return [requests, failures];
  }
}
