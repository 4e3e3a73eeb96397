/**
 * @module
 * A service's resilience: `retries:` (which failures go to another replica, and the retry budget) and
 * `admission:` (requests forwarded at once, and the queue of those waiting for a slot), with their
 * defaults. The proxy enforces both (`proxy/admission/`, docs/resilience.md); `service.ts` holds
 * them as two fields of a service. Apart because they are one concern with their own defaults and
 * bounds, read by the proxy without the rest of a service's schema.
 */
import * as v from "valibot";
import { expected, mapping } from "./issues.ts";
import * as L from "./limits.ts";
import { duration } from "./units.ts";

/**
 * Statuses retried on another replica by default. 500 is left out on purpose: an inference engine's
 * 500 is most often deterministic for the request (a prompt the template or the tokenizer chokes
 * on, an out-of-memory for that length), so sending it elsewhere multiplies the cost of a poison
 * request; a service whose 500s are transient adds it (`statuses: [500, 502, 503, 504, 429]`).
 */
export const DEFAULT_RETRY_STATUSES = [429, 502, 503, 504] as const;
export const DEFAULT_RETRIES = {
  /** Attempts in all, the first included: 3 reaches every replica of a typical 3-replica service. */
  attempts: 3,
  statuses: [...DEFAULT_RETRY_STATUSES] as number[],
  /** The replica closed or reset the connection before any response byte. */
  on_reset: true,
  /** The replica sent no response head within `read_timeout`. */
  on_timeout: true,
  /** Retries allowed per 10 s window: this share of the window's requests… */
  budget_percent: 20,
  /** …plus this many per second (Envoy's `min_retry_concurrency` 3, Linkerd's floor of 10/s). */
  budget_min_per_second: 3,
};
export type RetriesConfig = typeof DEFAULT_RETRIES;

const wholeIn = (min: number, max: number) =>
  v.pipe(
    v.number(expected("a whole number")),
    v.integer("expected a whole number"),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

/** `retries:` of a service: which failures go to another replica, and how many retries a host may make. */
export const Retries = mapping({
  attempts: v.optional(wholeIn(1, L.MAX_RETRY_ATTEMPTS), DEFAULT_RETRIES.attempts),
  statuses: v.optional(
    v.pipe(
      v.array(wholeIn(400, 599), expected("a list of status codes")),
      v.maxLength(200, "at most 200 status codes"),
    ),
    () => [...DEFAULT_RETRY_STATUSES],
  ),
  on_reset: v.optional(v.boolean(expected("true or false")), true),
  on_timeout: v.optional(v.boolean(expected("true or false")), true),
  budget_percent: v.optional(wholeIn(0, 100), DEFAULT_RETRIES.budget_percent),
  budget_min_per_second: v.optional(
    wholeIn(0, L.MAX_RETRY_BUDGET_MIN_PER_SECOND),
    DEFAULT_RETRIES.budget_min_per_second,
  ),
});

/** The priority classes of `admission.priority_header`, highest first (SMG's `X-SMG-Priority` classes). */
export const PRIORITY_CLASSES = ["system", "interactive", "default", "bulk"] as const;
export const DEFAULT_ADMISSION_QUEUE_SIZE = 100;
export const DEFAULT_ADMISSION_QUEUE_TIMEOUT_SECONDS = 30;

/** `admission:` of a service: requests forwarded at once, and the queue of those waiting for a slot. */
export const Admission = mapping({
  /** Per replica: the host forwards at most this × the registered replicas at once. */
  max_concurrency: wholeIn(1, L.MAX_ADMISSION_CONCURRENCY),
  queue_size: v.optional(wholeIn(0, L.MAX_ADMISSION_QUEUE), DEFAULT_ADMISSION_QUEUE_SIZE),
  queue_timeout: v.optional(
    duration(0, L.MAX_ADMISSION_QUEUE_TIMEOUT_SECONDS, "a timeout"),
    DEFAULT_ADMISSION_QUEUE_TIMEOUT_SECONDS,
  ),
  /** A request header naming a priority class (`PRIORITY_CLASSES`); absent or null: one FIFO. */
  priority_header: v.optional(
    v.nullable(
      v.pipe(
        v.string(expected("a header name")),
        v.maxLength(100, "at most 100 characters"),
        v.regex(/^[a-zA-Z0-9-]+$/, "expected a header name of letters, digits or '-'"),
      ),
    ),
    null,
  ),
});
