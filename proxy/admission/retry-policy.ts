/**
 * @module
 * Whether a failed attempt is tried again on another replica, and after how long: the service's
 * `retries` (`schema/service.ts`) compiled once per document, and the decision as a pure function
 * of the failure, the request's state and the service's retry budget (`retry-budget.ts`), so tests
 * drive it with their own clock and random numbers. `docs/resilience.md` has the rules and why.
 */
import type { ConfigService } from "../../schema/config-document.ts";
import { DEFAULT_RETRIES } from "../../schema/resilience.ts";
import type { RetryBudget } from "./retry-budget.ts";

/** How an attempt failed before any byte of its response went to the client. */
export type Failure =
  /** The replica was never reached (connect refused, DNS, connect timeout): nothing was sent to it. */
  | "connect"
  /** The connection closed or reset after the request was sent, before a response head. */
  | "reset"
  /** No response head within `read_timeout`. */
  | "timeout"
  /** Any other failure of ours or of the response (an invalid head): never retried. */
  | "other"
  /** The replica answered with this status (a whole head arrived, nothing relayed yet). */
  | number;

/** Why a failure that the service retries was not retried (`gateplane_retries_refused_total`'s `reason`). */
export const REFUSAL_REASONS = ["budget", "attempts", "body", "replicas"] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type RetryVerdict =
  | { retry: true; delayMs: number }
  /** `reason` null: the failure is not one the service retries (or bytes already reached the client). */
  | { retry: false; reason: RefusalReason | null };

/** What the decision reads of the request. */
export interface RetryState {
  /** Attempts made so far, the failed one included. */
  attempts: number;
  /** A response byte (its head included) went to the client: never retried. */
  relayed: boolean;
  /** The request body can be sent again: none, or held whole in memory (`body-buffer.ts`, `read-body.ts`). */
  replayable: boolean;
  /** Another replica is left to try (not tried yet by this request). */
  otherReplica: boolean;
}

/** Back-off of SMG (`50 ms × 1.5^n`, ± 20 % uniform jitter), capped at 1 s rather than SMG's 30 s. */
export const BACKOFF_BASE_MS = 50;
export const BACKOFF_FACTOR = 1.5;
export const BACKOFF_CAP_MS = 1_000;
export const BACKOFF_JITTER = 0.2;

/** The delay before retry number `retry` (1 = the first retry); `random` in [0, 1). */
export function backoffMs(retry: number, random: number): number {
  const base = Math.min(BACKOFF_BASE_MS * BACKOFF_FACTOR ** (retry - 1), BACKOFF_CAP_MS);
  return base * (1 + BACKOFF_JITTER * (2 * random - 1));
}

/** Status tables by their statuses: 10,000 services with the default retries share one (read-only once made). */
const STATUS_TABLES = new Map<string, Uint8Array>();
const MAX_STATUS_TABLES = 256;

function statusTable(statuses: readonly number[]): Uint8Array {
  const key = statuses.join(",");
  const known = STATUS_TABLES.get(key);
  if (known) return known;
  const table = new Uint8Array(200);
  for (const status of statuses) if (status >= 400 && status < 600) table[status - 400] = 1;
  if (STATUS_TABLES.size < MAX_STATUS_TABLES) STATUS_TABLES.set(key, table);
  return table;
}

export class RetryPolicy {
  readonly attempts: number;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  readonly budgetPercent: number;
  readonly budgetMinPerSecond: number;
  /** Retried statuses by code − 400 (a lookup, not a Set, on every 4xx/5xx answer); shared by equal sets. */
  readonly #statuses: Uint8Array;

  constructor(config: ConfigService["retries"] = null) {
    const c = config ?? DEFAULT_RETRIES;
    this.attempts = c.attempts;
    this.onReset = c.on_reset;
    this.onTimeout = c.on_timeout;
    this.budgetPercent = c.budget_percent;
    this.budgetMinPerSecond = c.budget_min_per_second;
    this.#statuses = statusTable(c.statuses);
  }

  /** The service retries a response with this status. */
  retriesStatus(status: number): boolean {
    return status >= 400 && status < 600 && this.#statuses[status - 400] === 1;
  }

  retries(failure: Failure): boolean {
    if (typeof failure === "number") return this.retriesStatus(failure);
    if (failure === "connect") return true;
    if (failure === "reset") return this.onReset;
    if (failure === "timeout") return this.onTimeout;
    return false;
  }

  /** Same settings (a document that keeps them keeps the service's budget). */
  sameAs(other: RetryPolicy): boolean {
    if (
      this.attempts !== other.attempts ||
      this.onReset !== other.onReset ||
      this.onTimeout !== other.onTimeout ||
      this.budgetPercent !== other.budgetPercent ||
      this.budgetMinPerSecond !== other.budgetMinPerSecond
    )
      return false;
    for (let i = 0; i < 200; i++) if (this.#statuses[i] !== other.#statuses[i]) return false;
    return true;
  }
}

/**
 * The decision for one failed attempt. In order: never once a byte went to the client; never a
 * failure the service does not retry; never past `attempts`; never a body that cannot be sent again
 * (except to a replica that was never reached: the body was not read); never without another
 * replica; and, for failures that reached a replica, only within the budget (taken here). A replica
 * that was never reached is retried at once and outside the budget: it received nothing, so a retry
 * adds no load to the fleet. `now` in ms (monotonic), `random` in [0, 1) for the jitter.
 */
export function decideRetry(
  policy: RetryPolicy,
  budget: RetryBudget,
  failure: Failure,
  state: RetryState,
  now: number,
  random: number,
): RetryVerdict {
  if (state.relayed || !policy.retries(failure)) return { retry: false, reason: null };
  if (state.attempts >= policy.attempts) return { retry: false, reason: "attempts" };
  const reached = failure !== "connect";
  if (reached && !state.replayable) return { retry: false, reason: "body" };
  if (!state.otherReplica) return { retry: false, reason: "replicas" };
  if (!reached) return { retry: true, delayMs: 0 };
  if (!budget.take(now)) return { retry: false, reason: "budget" };
  return { retry: true, delayMs: backoffMs(state.attempts, random) };
}
