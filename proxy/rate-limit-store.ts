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
 *
 * With gateway replicas (`mesh/mesh.ts`) a zone is also charged what the other hosts admitted under
 * a key (`charge`, `chargeHash`): their requests fill this host's bucket as if they had come here,
 * a digest later.
 */
import { keyHash } from "./mesh/hash.ts";

/** Most peers' charges a zone holds for keys this host has no bucket for (the oldest go first). */
const MAX_PENDING = 10_000;
/** A peer can fill a bucket at most this many seconds of the rate beyond its burst. */
const MAX_PEER_SECONDS = 60;

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
  /** Peers' charges by `keyHash` for keys without a bucket here; a new key adopts its own. */
  readonly #pending = new Map<number, Bucket>();

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
    if (this.#pending.size > 0) {
      const h = keyHash(this.spec.id, key);
      const pending = this.#pending.get(h);
      if (pending) {
        this.#pending.delete(h);
        this.#insert(key, pending, now);
        return this.take(key, now);
      }
    }
    this.#insert(key, { excess: 0, last: now }, now);
    return 0;
  }

  #insert(key: string, bucket: Bucket, now: number): void {
    this.#expire(now, 2);
    if (this.#buckets.size >= this.#cap) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) this.#buckets.delete(oldest.value);
    }
    this.#buckets.set(key, bucket);
  }

  /**
   * Other hosts admitted `count` requests under `key` (reported at `now`): the bucket leaks to now
   * and fills by them, as if they had come here (a new bucket's first request is free, as here).
   * The excess may pass the burst (the cluster did admit them) up to `MAX_PEER_SECONDS` of rate.
   */
  charge(key: string, count: number, now: number): void {
    const bucket = this.#buckets.get(key);
    if (bucket) this.#fill(bucket, count, now);
    else this.#insert(key, { excess: this.#capped((count - 1) * 1000), last: now }, now);
  }

  /** `charge` for a key known only by its `keyHash` (no bucket here has it): held until the key arrives. */
  chargeHash(hash: number, count: number, now: number): void {
    const pending = this.#pending.get(hash);
    if (pending) {
      this.#fill(pending, count, now);
      return;
    }
    if (this.#pending.size >= MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
    this.#pending.set(hash, { excess: this.#capped((count - 1) * 1000), last: now });
  }

  #fill(bucket: Bucket, count: number, now: number): void {
    const ms = Math.max(0, now - bucket.last);
    const leaked = Math.max(0, bucket.excess - Math.floor((this.spec.rate * ms) / 1000));
    bucket.excess = this.#capped(leaked + count * 1000);
    if (ms !== 0) bucket.last = now;
  }

  #capped(excess: number): number {
    return Math.min(Math.max(0, excess), this.spec.burst + this.spec.rate * MAX_PEER_SECONDS);
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
  /** Told of every admitted request (the mesh counts them for its next digest); null: nobody asks. */
  onAdmit: ((zoneId: string, key: string) => void) | null = null;

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

  /**
   * Follows a delta: the zones of the services it changed or removed (`dropped`, the rules they had)
   * go unless `added` (the rules they have now) still has them; a kept rule keeps its buckets. Every
   * other zone is left as it is, unvisited (a zone's id names its service, `rate-limit.ts`).
   */
  retainChanged(added: Iterable<ZoneSpec>, dropped: Iterable<string>): void {
    const wanted = new Map<string, ZoneSpec>();
    for (const spec of added) wanted.set(spec.id, spec);
    for (const id of dropped) if (!wanted.has(id)) this.#zones.delete(id);
    for (const [id, spec] of wanted) if (!this.#zones.has(id)) this.#zones.set(id, new Zone(spec, this.#cap));
  }

  /** The ids of the zones kept (tests, diagnostics). */
  ids(): string[] {
    return [...this.#zones.keys()];
  }

  zone(id: string): Zone | undefined {
    return this.#zones.get(id);
  }

  /**
   * The verdict for one request that arrived at `at` (default: now); null for a zone the document
   * no longer has (a child process still on the old one): not limited.
   */
  take(zoneId: string, key: string, at?: number): Verdict | null {
    const verdict = this.#zones.get(zoneId)?.take(key, at ?? this.#now()) ?? null;
    if (verdict !== null && verdict >= 0 && this.onAdmit) this.onAdmit(zoneId, key);
    return verdict;
  }

  /** Peers admitted `count` requests under `key` in zone `zoneId` (`Zone.charge`); unknown zones are ignored. */
  charge(zoneId: string, key: string, count: number): void {
    this.#zones.get(zoneId)?.charge(key, count, this.#now());
  }

  /** `charge` for a key known here only by its hash (`Zone.chargeHash`). */
  chargeHash(zoneId: string, hash: number, count: number): void {
    this.#zones.get(zoneId)?.chargeHash(hash, count, this.#now());
  }
}
