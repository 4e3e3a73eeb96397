/**
 * @module
 * One undici `Pool` of keep-alive connections per replica origin, shared by every configuration
 * version that names that origin. When a document drops an origin its pool is closed gracefully:
 * undici lets the requests already dispatched on it (streams included) finish before it closes the
 * sockets, which is exactly the drain a removed replica needs.
 */
import { Pool } from "undici";

export interface PoolSettings {
  /** Connection attempts slower than this fail (the request is retried elsewhere or gets 504). */
  connectTimeoutMs: number;
  /** Idle keep-alive connections close after this (a shorter `Keep-Alive: timeout` from the replica wins). */
  keepAliveTimeoutMs: number;
  /** Connections per origin; null = as many as concurrent requests need (nginx's behaviour). */
  connections: number | null;
  /** Requests in flight per connection (1 = no pipelining). */
  pipelining: number;
}

export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  connectTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  connections: null,
  pipelining: 1,
};

export class UpstreamPools {
  readonly #settings: PoolSettings;
  readonly #pools = new Map<string, Pool>();
  #wanted: { has(origin: string): boolean } = new Set<string>();

  constructor(settings: PoolSettings) {
    this.#settings = settings;
  }

  /** The pool for `origin`. Asked for an origin the current document dropped (a request started under an older one), it lends a pool that closes once that request is done. */
  get(origin: string): Pool {
    const pool = this.#pools.get(origin);
    if (pool && !pool.closed) return pool;
    const fresh = this.#create(origin);
    if (this.#wanted.has(origin)) this.#pools.set(origin, fresh);
    else queueMicrotask(() => void fresh.close().catch(() => {}));
    return fresh;
  }

  /** Keeps the pools of these origins; the others close as soon as their requests are done. */
  retain(origins: { has(origin: string): boolean }): void {
    this.#wanted = origins;
    for (const [origin, pool] of this.#pools) {
      if (origins.has(origin)) continue;
      this.#pools.delete(origin);
      void pool.close().catch(() => {});
    }
  }

  /**
   * Follows a delta: `origins` is the table's (changed in place, `table-index.ts`), `gone` the origins
   * it no longer has; only their pools close, the others are not visited.
   */
  retainChanged(origins: { has(origin: string): boolean }, gone: Iterable<string>): void {
    this.#wanted = origins;
    for (const origin of gone) {
      const pool = this.#pools.get(origin);
      if (!pool || origins.has(origin)) continue;
      this.#pools.delete(origin);
      void pool.close().catch(() => {});
    }
  }

  /** Origins with an open pool (for tests and diagnostics). */
  origins(): string[] {
    return [...this.#pools.keys()];
  }

  /** Closes every pool: gracefully, or at once (aborting what is still running) with `force`. */
  async closeAll(force = false): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#wanted = new Set<string>();
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close()).catch(() => {})));
  }

  #create(origin: string): Pool {
    const s = this.#settings;
    return new Pool(origin, {
      connections: s.connections,
      pipelining: s.pipelining,
      keepAliveTimeout: s.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(s.keepAliveTimeoutMs, 600_000),
      connectTimeout: s.connectTimeoutMs,
      // Timeouts are per request (the service's read_timeout); these are only the fallbacks.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  }
}
