/**
 * @module
 * What a proxy process needs to serve, besides documents: listener bounds and timeouts, retries,
 * the rate-limit zone size, passive health, upstream pools, the hold queue, body buffering, metrics.
 * Plain data, so the parent can hand it to its child processes (`process-protocol.ts`); checked once,
 * in the parent, before any listener starts (`checkSettings`).
 */
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from "./balancer.ts";
import { type BodyBufferSettings, DEFAULT_BODY_BUFFER } from "./body-budget.ts";
import { ProxyOptionsError } from "./errors.ts";
import { DEFAULT_HOLD_LIMITS, type HoldLimits } from "./hold.ts";
import { DEFAULT_OBSERVE_LIMITS, type ObserveLimits } from "./observe/sinks.ts";
import { DEFAULT_POOL_SETTINGS, type PoolSettings } from "./upstream-pools.ts";

export interface ServerSettings {
  /** Largest request head in bytes (Node answers 431 beyond it). */
  maxHeaderSize: number;
  /** Most header fields in a request (431 beyond it). */
  maxHeadersCount: number;
  /** A client must send its whole request head within this (Node answers 408). */
  headersTimeoutMs: number;
  /** A client must send its whole request, body included, within this. */
  requestTimeoutMs: number;
  /** Idle client keep-alive connections close after this. */
  keepAliveTimeoutMs: number;
  /** On close, how long requests in flight may run before connections are cut. */
  drainTimeoutMs: number;
  /**
   * On close, how long an idle keep-alive connection stays open for one more request (answered with
   * `Connection: close`) before it is closed: closing it at once races a client's next request on it.
   */
  drainIdleMs: number;
  /** Other replicas tried for an upgrade (tunnel) that never reached one; HTTP requests follow their service's `retries`. */
  maxRetries: number;
  /** Seconds in the `Retry-After` of a 503 for a service without replicas. */
  retryAfterSeconds: number;
  /** Most keys one rate-limit zone keeps (least recently used evicted beyond); nginx's 10 MB zone ≈ 160 000. */
  rateLimitKeys: number;
  health: HealthPolicy;
  pools: PoolSettings;
  /** Bounds of the queue of requests held for services scaled to zero. */
  hold: HoldLimits;
  /** Request bodies read before a replica is dialled, and the body read timeout (`body-buffer.ts`). */
  bodyBuffer: BodyBufferSettings;
  /** Measure requests (`observe/`): Prometheus series and the LLM windows of the report. Off: the benchmark's baseline. */
  metrics: boolean;
  /** Access log buffering and span export batching (`observe/sinks.ts`). */
  observe: ObserveLimits;
  /** The processes serving the host, which split admission limits and retry floors (`admission/`); set by `index.ts`. */
  processShares: number;
  /**
   * A serving process waits this long for the parent's routing decision (the host's shared state)
   * before deciding with its own: every request of such a service waits on it, and a parent that is
   * well answers in well under a millisecond.
   */
  routingAnswerMs: number;
}

export const DEFAULT_SERVER_SETTINGS: ServerSettings = {
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 100,
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 75_000,
  drainTimeoutMs: 10_000,
  drainIdleMs: 2_000,
  maxRetries: 3,
  retryAfterSeconds: 5,
  rateLimitKeys: 160_000,
  health: DEFAULT_HEALTH_POLICY,
  pools: DEFAULT_POOL_SETTINGS,
  hold: DEFAULT_HOLD_LIMITS,
  bodyBuffer: DEFAULT_BODY_BUFFER,
  metrics: true,
  observe: DEFAULT_OBSERVE_LIMITS,
  processShares: 1,
  routingAnswerMs: 500,
};

/** Throws `ProxyOptionsError` naming the first setting a process cannot work with. */
export function checkSettings(settings: ServerSettings): void {
  const positive: (keyof ServerSettings)[] = [
    "maxHeaderSize",
    "maxHeadersCount",
    "headersTimeoutMs",
    "requestTimeoutMs",
    "keepAliveTimeoutMs",
    "drainTimeoutMs",
    "drainIdleMs",
    "routingAnswerMs",
  ];
  for (const key of positive) {
    const value = settings[key];
    if (typeof value !== "number" || !(value > 0))
      throw new ProxyOptionsError(`settings.${key}`, "expected a positive number");
  }
  if (!Number.isInteger(settings.maxRetries) || settings.maxRetries < 0) {
    throw new ProxyOptionsError("settings.maxRetries", "expected a whole number ≥ 0");
  }
  if (!Number.isSafeInteger(settings.rateLimitKeys) || settings.rateLimitKeys < 1) {
    throw new ProxyOptionsError("settings.rateLimitKeys", "expected a whole number of keys ≥ 1");
  }
  for (const key of ["requestBytes", "processBytes", "readTimeoutMs"] as const) {
    const value = settings.bodyBuffer?.[key];
    if (!Number.isSafeInteger(value) || !(value >= (key === "readTimeoutMs" ? 1 : 0))) {
      throw new ProxyOptionsError(`settings.bodyBuffer.${key}`, "expected a whole number ≥ 0 (readTimeoutMs ≥ 1)");
    }
  }
  for (const key of Object.keys(DEFAULT_OBSERVE_LIMITS) as (keyof ObserveLimits)[]) {
    const value = settings.observe?.[key];
    const least = key === "accessLogFlushMs" ? 0 : 1;
    if (!Number.isSafeInteger(value) || !(value >= least)) {
      throw new ProxyOptionsError(`settings.observe.${key}`, `expected a whole number ≥ ${least}`);
    }
  }
  for (const key of ["perService", "total", "signalIntervalMs"] as const) {
    const value = settings.hold?.[key];
    if (!Number.isInteger(value) || !(value >= (key === "signalIntervalMs" ? 0 : 1))) {
      throw new ProxyOptionsError(`settings.hold.${key}`, "expected a whole number ≥ 1 (signalIntervalMs ≥ 0)");
    }
  }
  if (!Number.isInteger(settings.processShares) || settings.processShares < 1) {
    throw new ProxyOptionsError("settings.processShares", "expected a whole number ≥ 1");
  }
  if (typeof settings.metrics !== "boolean") throw new ProxyOptionsError("settings.metrics", "expected true or false");
}
