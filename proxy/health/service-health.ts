/**
 * @module
 * A service's replica-health settings as a process's balancer uses them, from the document's
 * `health` (`schema/health.ts`). A document without one (an older control plane) gets passive
 * health with the breaker's defaults: no active checks, no wait, no slow start.
 */
import { HEALTH_DEFAULTS, type HealthDocument } from "../../schema/health.ts";
import type { BreakerSettings } from "./circuit-breaker.ts";

export interface ServiceHealth {
  /** Active checks run for the service (their verdicts reach the balancer as `setActive`). */
  checked: boolean;
  /** A replica takes traffic only once a check passed (with `checked`). */
  waitHealthy: boolean;
  /** A replica admitted (new, recovered, readmitted, breaker closed) ramps to its full share over this. */
  slowStartMs: number;
  breaker: BreakerSettings | null;
}

export const DEFAULT_BREAKER: BreakerSettings = { ...HEALTH_DEFAULTS.breaker };

/** Passive health only (tests, benchmarks, documents without `health`). */
export const PASSIVE_HEALTH: ServiceHealth = { checked: false, waitHealthy: false, slowStartMs: 0, breaker: null };

export function serviceHealth(doc: HealthDocument | null | undefined): ServiceHealth {
  if (!doc) return { ...PASSIVE_HEALTH, breaker: DEFAULT_BREAKER };
  const b = doc.circuit_breaker;
  return {
    checked: doc.check !== null,
    waitHealthy: doc.check !== null && doc.wait_healthy,
    slowStartMs: doc.slow_start_ms,
    breaker: b && {
      consecutiveFailures: b.consecutive_failures,
      errorRate: b.error_rate,
      minRequests: b.min_requests,
      windowMs: b.window_ms,
      openMs: b.open_ms,
      halfOpenSuccesses: b.half_open_successes,
    },
  };
}

export const sameBreaker = (a: BreakerSettings | null, b: BreakerSettings | null): boolean =>
  a === b ||
  (a !== null &&
    b !== null &&
    a.consecutiveFailures === b.consecutiveFailures &&
    a.errorRate === b.errorRate &&
    a.minRequests === b.minRequests &&
    a.windowMs === b.windowMs &&
    a.openMs === b.openMs &&
    a.halfOpenSuccesses === b.halfOpenSuccesses);
