/**
 * @module
 * Replica health (docs/health.md): a service's `health:` (active checks, waiting for the first
 * passing check, slow start, circuit breaker), its resolved form in the configuration document
 * (milliseconds, every default applied), and a replica's health as the agent reports it and the API
 * shows it. Defaults follow SMG (`../shared/reference/llm-serving-protocols.md` §4: 3 failures /
 * 2 successes; breaker 10 consecutive failures, open 60 s, 3 half-open successes) except the check
 * interval and timeout: 5 s / 2 s (SMG: 60 s / 5 s), and 1 s while a replica is not healthy, so a
 * dead replica is out in seconds and a recovered one back in about two.
 */
import * as v from "valibot";
import { describeType, expected, mapping } from "./issues.ts";
import * as L from "./limits.ts";
import { text } from "./text.ts";
import { parseDuration } from "./units.ts";

export const HEALTH_DEFAULTS = {
  path: "/health",
  intervalMs: 5_000,
  /** While a replica is not healthy (unknown, failing, unhealthy, ejected): fast confirmation both ways. */
  unhealthyIntervalMs: 1_000,
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  waitHealthy: true,
  slowStartMs: 30_000,
  breaker: {
    consecutiveFailures: 10,
    /** Opens at this share of failures in the window, once `minRequests` were seen there. */
    errorRate: 0.5,
    minRequests: 20,
    windowMs: 60_000,
    openMs: 60_000,
    halfOpenSuccesses: 3,
  },
} as const;

const seconds = (min: number, max: number, what: string) =>
  v.pipe(
    v.union([v.number(), v.string()], expected(`${what} such as 5s or 0.5s`)),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const s = parseDuration(dataset.value);
      if (s === null || !Number.isFinite(s) || s < min || s > max) {
        addIssue({ message: `expected ${what} between ${min}s and ${max}s, got ${describeType(dataset.value)}` });
        return NEVER;
      }
      return s;
    }),
  );

const count = (min: number, max: number) =>
  v.pipe(
    v.number(expected("a whole number")),
    v.integer("expected a whole number"),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const HealthCheckInput = mapping({
  path: v.optional(
    v.pipe(
      text(expected("a path")),
      v.maxLength(1000, "at most 1000 characters"),
      v.regex(/^\/[^\s?#]*$/, "must start with / and contain no spaces, query or fragment"),
    ),
  ),
  interval: v.optional(seconds(L.MIN_HEALTH_INTERVAL_SECONDS, L.MAX_HEALTH_INTERVAL_SECONDS, "an interval")),
  timeout: v.optional(seconds(L.MIN_HEALTH_TIMEOUT_SECONDS, L.MAX_HEALTH_TIMEOUT_SECONDS, "a timeout")),
  healthy_threshold: v.optional(count(1, L.MAX_HEALTH_THRESHOLD)),
  unhealthy_threshold: v.optional(count(1, L.MAX_HEALTH_THRESHOLD)),
});

const CircuitBreakerInput = mapping({
  consecutive_failures: v.optional(count(1, L.MAX_BREAKER_FAILURES)),
  error_rate: v.optional(
    v.pipe(
      v.number(expected("a ratio")),
      v.finite(),
      v.gtValue(0, "must be above 0"),
      v.maxValue(1, "must be at most 1"),
    ),
  ),
  min_requests: v.optional(count(1, L.MAX_BREAKER_FAILURES)),
  window: v.optional(seconds(1, L.MAX_BREAKER_SECONDS, "a window")),
  open: v.optional(seconds(1, L.MAX_BREAKER_SECONDS, "a duration")),
  half_open_successes: v.optional(count(1, L.MAX_HEALTH_THRESHOLD)),
});

/**
 * A service's `health:`. `check: false` turns active checks off; absent: on for LLM services (a
 * `model`, a `router` or an `engine`), off otherwise (an arbitrary HTTP service may have no
 * `/health`). `circuit_breaker: false` turns the breaker off.
 */
export const HealthInput = mapping({
  check: v.optional(v.union([v.boolean(), HealthCheckInput], expected("true, false or a mapping"))),
  wait_healthy: v.optional(v.boolean(expected("true or false"))),
  slow_start: v.optional(seconds(0, L.MAX_SLOW_START_SECONDS, "a duration")),
  circuit_breaker: v.optional(v.union([v.boolean(), CircuitBreakerInput], expected("true, false or a mapping"))),
});
export type HealthInput = v.InferOutput<typeof HealthInput>;

const whole = (min: number, max: number) => v.pipe(v.number(), v.safeInteger(), v.minValue(min), v.maxValue(max));

/** The resolved `health` of a service in the configuration document; null or absent: passive health and the breaker's defaults only. */
export const HealthDocument = v.object({
  check: v.nullable(
    v.object({
      path: v.string(),
      interval_ms: whole(1, L.MAX_HEALTH_INTERVAL_SECONDS * 1000),
      unhealthy_interval_ms: whole(1, L.MAX_HEALTH_INTERVAL_SECONDS * 1000),
      timeout_ms: whole(1, L.MAX_HEALTH_TIMEOUT_SECONDS * 1000),
      healthy_threshold: whole(1, L.MAX_HEALTH_THRESHOLD),
      unhealthy_threshold: whole(1, L.MAX_HEALTH_THRESHOLD),
    }),
  ),
  wait_healthy: v.boolean(),
  slow_start_ms: whole(0, L.MAX_SLOW_START_SECONDS * 1000),
  circuit_breaker: v.nullable(
    v.object({
      consecutive_failures: whole(1, L.MAX_BREAKER_FAILURES),
      error_rate: v.pipe(v.number(), v.finite(), v.gtValue(0), v.maxValue(1)),
      min_requests: whole(1, L.MAX_BREAKER_FAILURES),
      window_ms: whole(1, L.MAX_BREAKER_SECONDS * 1000),
      open_ms: whole(1, L.MAX_BREAKER_SECONDS * 1000),
      half_open_successes: whole(1, L.MAX_HEALTH_THRESHOLD),
    }),
  ),
});
export type HealthDocument = v.InferOutput<typeof HealthDocument>;

const ms = (s: number) => Math.round(s * 1000);

/** A service's `health:` resolved for the document; `llm`: the service has a model, a router or an engine. */
export function healthDocument(input: HealthInput | null | undefined, llm: boolean): HealthDocument {
  const d = HEALTH_DEFAULTS;
  const c = input?.check ?? llm;
  const check =
    c === false
      ? null
      : {
          path: (c !== true && c.path) || d.path,
          interval_ms: c !== true && c.interval !== undefined ? ms(c.interval) : d.intervalMs,
          unhealthy_interval_ms: Math.min(
            d.unhealthyIntervalMs,
            c !== true && c.interval !== undefined ? ms(c.interval) : d.intervalMs,
          ),
          timeout_ms: c !== true && c.timeout !== undefined ? ms(c.timeout) : d.timeoutMs,
          healthy_threshold: (c !== true && c.healthy_threshold) || d.healthyThreshold,
          unhealthy_threshold: (c !== true && c.unhealthy_threshold) || d.unhealthyThreshold,
        };
  const b = input?.circuit_breaker ?? true;
  const breaker =
    b === false
      ? null
      : {
          consecutive_failures: (b !== true && b.consecutive_failures) || d.breaker.consecutiveFailures,
          error_rate: (b !== true && b.error_rate) || d.breaker.errorRate,
          min_requests: (b !== true && b.min_requests) || d.breaker.minRequests,
          window_ms: b !== true && b.window !== undefined ? ms(b.window) : d.breaker.windowMs,
          open_ms: b !== true && b.open !== undefined ? ms(b.open) : d.breaker.openMs,
          half_open_successes: (b !== true && b.half_open_successes) || d.breaker.halfOpenSuccesses,
        };
  return {
    check,
    // Waiting for a first check needs a check.
    wait_healthy: check !== null && (input?.wait_healthy ?? d.waitHealthy),
    slow_start_ms: input?.slow_start !== undefined ? ms(input.slow_start) : d.slowStartMs,
    circuit_breaker: breaker,
  };
}

/**
 * A replica's one state: `unknown` (waiting for its first check, no traffic), `healthy`,
 * `slow_start` (admitted, its share ramping up), `ejected` (passive failures or an open breaker),
 * `unhealthy` (failed its active checks).
 */
export const REPLICA_HEALTH_STATES = ["healthy", "slow_start", "unknown", "ejected", "unhealthy"] as const;
export type ReplicaHealthState = (typeof REPLICA_HEALTH_STATES)[number];
export const CIRCUIT_STATES = ["closed", "half_open", "open"] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** Worse first wins when gateway replicas or processes disagree. */
export const HEALTH_SEVERITY: Record<ReplicaHealthState, number> = {
  healthy: 0,
  slow_start: 1,
  unknown: 2,
  ejected: 3,
  unhealthy: 4,
};
export const CIRCUIT_SEVERITY: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/** One replica's health as the agent reports it (per service, bounded like the replicas). */
export const ReplicaHealth = v.object({
  replica: v.pipe(v.string(), v.maxLength(200)),
  state: v.picklist(REPLICA_HEALTH_STATES),
  circuit: v.picklist(CIRCUIT_STATES),
  /** The last active check's outcome; null: no check (off, or none yet). */
  last_check: v.nullable(v.picklist(["pass", "fail"])),
  /** Why the last check or request failed, while it matters. */
  error: v.nullable(v.pipe(v.string(), v.maxLength(1000))),
});
export type ReplicaHealth = v.InferOutput<typeof ReplicaHealth>;

/** The worse of two reports of one replica (gateway replicas, proxy processes). */
export function worseHealth(a: ReplicaHealth, b: ReplicaHealth): ReplicaHealth {
  const state = HEALTH_SEVERITY[b.state] > HEALTH_SEVERITY[a.state] ? b.state : a.state;
  const circuit = CIRCUIT_SEVERITY[b.circuit] > CIRCUIT_SEVERITY[a.circuit] ? b.circuit : a.circuit;
  const last_check = a.last_check === "fail" || b.last_check === "fail" ? "fail" : (a.last_check ?? b.last_check);
  return { replica: a.replica, state, circuit, last_check, error: a.error ?? b.error };
}
