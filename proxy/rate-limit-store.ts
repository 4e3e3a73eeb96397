/**
 * @module
 * Leaky buckets as nginx's `ngx_http_limit_req_module` keeps them: one zone per rate-limit rule,
 * one bucket per key, excess counted in milli-requests at millisecond granularity, `nodelay`
 * (a request is admitted at once or refused, never delayed). The zones of a whole host live in one
 * process (see `rate-limit-gate.ts`), so every proxy process shares them.
 *
 * Memory is bounded per zone: a bucket that has drained completely is the same as no bucket, so it
 * is dropped whenever it is seen (two are checked on each new key, as nginx does); when the zone is
 * full anyway, the least recently used bucket goes. An evicted key starts afresh, which can only
 * admit more, never refuse a legitimate client.
 */

/** What a zone is; equal ids mean equal rules, so a zone (and its buckets) survives a document that keeps it. */
export interface ZoneSpec {
  readonly id: string;
  /** Milli-requests per second (nginx's `ctx->rate`). */
  readonly rate: number;
  /** Excess allowed, in milli-requests (nginx's `limit->burst`: `burst × 1000`). */
  readonly burst: number;
}

/**
 * A zone's answer for one request: the bucket's excess after admitting it (≥ 0, milli-requests),
 * or, when refused, minus the excess it would have had (always < 0, since that is > burst ≥ 0).
 * Numbers travel between processes cheaply; `verdictAdmitted` and friends read them.
 */
export type Verdict = number;

export const verdictAdmitted = (v: Verdict): boolean => v >= 0;

interface Bucket {
  excess: number;
  /** Last time (ms) the bucket admitted a request at a later millisecond than before. */
  last: number;
}

/**
 * Milliseconds (nginx's `ngx_current_msec`) on a clock every process of the host reads alike: the
 * wall clock when the process started plus monotonic time since. Child processes stamp each request
 * when it arrives, so a parent busy for a moment still sees the requests spread as they came. A clock a
 * little ahead in one process only looks like time standing still to the others (nginx counts a
 * negative interval as 0), never like extra leak.
 */
export const hostMs = (): number => Math.floor(performance.timeOrigin + performance.now());

export class Zone {
  readonly spec: ZoneSpec;
  readonly #cap: number;
  /** Map order is the LRU order: the first entry is the least recently used. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(spec: ZoneSpec, cap: number) {
    this.spec = spec;
    this.#cap = cap;
  }

  /** Keys holding state now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** nginx's `ngx_http_limit_req_lookup` with accounting, for the request arriving at `now` (ms). */
  take(key: string, now: number): Verdict {
    const { rate, burst } = this.spec;
    const bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key);
      this.#buckets.set(key, bucket);
      let ms = now - bucket.last;
      if (ms < -60_000) ms = 1;
      else if (ms < 0) ms = 0;
      // Integer arithmetic as nginx: the drain of a few milliseconds at a low rate rounds down.
      let excess = bucket.excess - Math.floor((rate * ms) / 1000) + 1000;
      if (excess < 0) excess = 0;
      if (excess > burst) return -excess;
      bucket.excess = excess;
      if (ms !== 0) bucket.last = now;
      return excess;
    }
    this.#expire(now, 2);
    if (this.#buckets.size >= this.#cap) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) this.#buckets.delete(oldest.value);
    }
    this.#buckets.set(key, { excess: 0, last: now });
    return 0;
  }

  /** Drops up to `n` of the least recently used buckets that drained to nothing. */
  #expire(now: number, n: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (n-- <= 0 || !this.#drained(bucket, now)) return;
      this.#buckets.delete(key);
    }
  }

  /**
   * A bucket that would answer exactly like a new key: `excess + 1000` has leaked away, so the next
   * request is admitted with excess 0. (nginx drops a bucket a little earlier, at `excess` leaked,
   * which hands the key one extra request; dropping only here keeps eviction of idle keys invisible.)
   */
  #drained(bucket: Bucket, now: number): boolean {
    return bucket.excess + 1000 <= Math.floor((this.spec.rate * Math.max(0, now - bucket.last)) / 1000);
  }
}

/** Every zone of the host, following the rules of the document in force. */
export class ZoneRegistry {
  readonly #zones = new Map<string, Zone>();
  readonly #cap: number;
  readonly #now: () => number;

  /** `keysPerZone`: most keys a zone keeps (nginx's 10 MB zone holds about 160 000). */
  constructor(keysPerZone: number, now: () => number = hostMs) {
    this.#cap = keysPerZone;
    this.#now = now;
  }

  /** Keeps the zones whose rule is still there (their buckets too), adds new ones, drops the rest. */
  retain(specs: Iterable<ZoneSpec>): void {
    const wanted = new Map<string, ZoneSpec>();
    for (const spec of specs) wanted.set(spec.id, spec);
    for (const id of this.#zones.keys()) if (!wanted.has(id)) this.#zones.delete(id);
    for (const [id, spec] of wanted) if (!this.#zones.has(id)) this.#zones.set(id, new Zone(spec, this.#cap));
  }

  zone(id: string): Zone | undefined {
    return this.#zones.get(id);
  }

  /**
   * The verdict for one request that arrived at `at` (default: now); null for a zone the document
   * no longer has (a child process still on the old one): not limited.
   */
  take(zoneId: string, key: string, at?: number): Verdict | null {
    return this.#zones.get(zoneId)?.take(key, at ?? this.#now()) ?? null;
  }
}
