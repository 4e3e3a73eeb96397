/**
 * @module
 * A service's retry budget in one proxy process, as Linkerd's and Envoy's: in any 10-second window,
 * retries may be at most `percent` % of the window's requests plus `minPerSecond` per second, so a
 * failing fleet sees at most 1.2 × its traffic (at the defaults) however many replicas fail, and a
 * quiet service can still retry a few. The window is ten one-second buckets; recording a request is
 * two array writes and a comparison (it is on every request's path).
 *
 * Per process: the requests of a host are spread over its processes, so the percentage holds for the
 * host as a whole; the floor is divided by the number of processes (`shares`) so the host's floor is
 * `minPerSecond` too.
 */

export const BUDGET_WINDOW_SECONDS = 10;

const NO_BUCKETS = new Float64Array(0);

export class RetryBudget {
  readonly #percent: number;
  /** Retries always allowed in a window, in this process. */
  readonly #floor: number;
  // Made on the first request: a service that gets none costs no buckets.
  #requests = NO_BUCKETS;
  #retries = NO_BUCKETS;
  /** The second (ms / 1000, floored) the newest bucket counts. */
  #second = Number.NEGATIVE_INFINITY;

  constructor(percent: number, minPerSecond: number, shares = 1) {
    this.#percent = percent;
    this.#floor = (minPerSecond * BUDGET_WINDOW_SECONDS) / Math.max(1, shares);
  }

  /** Moves the window to `now` (ms) and returns the bucket of this second. */
  #advance(now: number): number {
    if (this.#requests === NO_BUCKETS) {
      this.#requests = new Float64Array(BUDGET_WINDOW_SECONDS);
      this.#retries = new Float64Array(BUDGET_WINDOW_SECONDS);
    }
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      const gone = second - this.#second;
      if (gone >= BUDGET_WINDOW_SECONDS || gone < 0) {
        this.#requests.fill(0);
        this.#retries.fill(0);
      } else {
        for (let s = this.#second + 1; s <= second; s++) {
          const i = s % BUDGET_WINDOW_SECONDS;
          this.#requests[i] = 0;
          this.#retries[i] = 0;
        }
      }
      this.#second = second;
    }
    return second % BUDGET_WINDOW_SECONDS;
  }

  /** One request arrived at `now` (ms). */
  request(now: number): void {
    // The bucket first: `#advance` may make the arrays this reads.
    const i = this.#advance(now);
    this.#requests[i]!++;
  }

  /** Takes one retry from the budget at `now` (ms); false when the window's retries are spent. */
  take(now: number): boolean {
    const i = this.#advance(now);
    let requests = 0;
    let retries = 0;
    for (let b = 0; b < BUDGET_WINDOW_SECONDS; b++) {
      requests += this.#requests[b]!;
      retries += this.#retries[b]!;
    }
    if (retries + 1 > (this.#percent / 100) * requests + this.#floor) return false;
    this.#retries[i]!++;
    return true;
  }
}
