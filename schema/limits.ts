/**
 * @module
 * The bounds of every number that crosses the Worker → agent → proxy boundaries: the service schema
 * (API and `type: service` files) refuses what is outside them, and the configuration document the
 * agent and proxy validate checks the same bounds, so a value the API accepted can never be one the
 * agent refuses. Keep docs/services.md ("Limits") in step with this file.
 */

/** `client_max_body_size` in bytes: 1 TiB. Beyond it a count of bytes stops being meaningful for a proxy. */
export const MAX_CLIENT_MAX_BODY_SIZE = 1024 ** 4;
/** `read_timeout` in seconds (a day); below 1 s a model server never answers its first token. */
export const MIN_READ_TIMEOUT_SECONDS = 1;
export const MAX_READ_TIMEOUT_SECONDS = 86_400;
/** `hsts.max_age` in seconds: two years, twice the preload minimum. */
export const MAX_HSTS_MAX_AGE = 63_072_000;
/** `rate_limits[].rps`: dstack's minimum (one request a minute) to a million per second per key. */
export const MIN_RPS = 1 / 60;
export const MAX_RPS = 1_000_000;
/**
 * `rate_limits[].burst` in requests. The proxy counts in milli-requests (nginx's `burst × 1000`),
 * which stays a safe integer far beyond this.
 */
export const MAX_BURST = 1_000_000;
/** `scaling.target` of `metric: rps` (requests per second per replica). */
export const MAX_SCALING_TARGET = 1_000_000;
/**
 * `scaling.target` per metric, inclusive, and always above 0 (the rule divides by it). `ttft` and
 * `itl` are p90s in seconds estimated from the agents' histograms (`llm-stats.ts`): below their first
 * bound (1 ms) an estimate is a straight line from 0, not a measurement, and a p90 past the last bound
 * reads as that bound, so the most a target may be is half of it rounded down to a bound (TTFT 60 s →
 * 30 s, ITL 2.5 s → 1 s): an observation twice the target must still be visible. `queue` is the mean
 * of the engines' waiting requests per replica.
 */
export const SCALING_TARGET_LIMITS = {
  rps: { min: 0, max: MAX_SCALING_TARGET },
  ttft: { min: 0.001, max: 30 },
  itl: { min: 0.001, max: 1 },
  queue: { min: 0, max: 10_000 },
} as const;
/** `scaling.hold_timeout` in seconds. */
export const MIN_HOLD_TIMEOUT_SECONDS = 1;
export const MAX_HOLD_TIMEOUT_SECONDS = 300;
/** `scaling.scale_up_delay` / `scale_down_delay` in seconds. */
export const MAX_SCALING_DELAY_SECONDS = 86_400;
/** `replicas` (a count or the maximum of a range). */
export const MAX_SERVICE_REPLICAS = 1000;
/** `router.balance_abs_threshold` (in-flight requests). */
export const MAX_BALANCE_ABS_THRESHOLD = 2 ** 31 - 1;
/** `router.balance_rel_threshold` (a ratio ≥ 1). */
export const MAX_BALANCE_REL_THRESHOLD = 1_000_000;
/** `router.eviction_interval` in seconds. */
export const MAX_EVICTION_INTERVAL_SECONDS = 86_400;
/** `router.max_tree_size`: 2^30 characters per worker is already gigabytes of routing history. */
export const MAX_TREE_SIZE_LIMIT = 2 ** 30;
/** `router.least_load_kv_pressure_weight` in seconds (SMG's λ; its default is 0.15). */
export const MAX_LEAST_LOAD_KV_PRESSURE_WEIGHT = 3600;
/** `router.least_load_default_throughput` in tokens per second, for engines that report none. */
export const MAX_LEAST_LOAD_DEFAULT_THROUGHPUT = 1e9;
/** `router.least_load_mean_prefill_tokens`: a prompt of 2^24 tokens is beyond any context window. */
export const MAX_LEAST_LOAD_MEAN_PREFILL_TOKENS = 2 ** 24;
/** `router.prefix_load_request_cost` in characters of prefill one request of load is worth. */
export const MAX_PREFIX_LOAD_REQUEST_COST = 2 ** 24;
/** `router.prefix_load_temperature` (0 = always the cheapest; large values approach random). */
export const MAX_PREFIX_LOAD_TEMPERATURE = 1000;
/** Replica health (`schema/health.ts`): active check interval and timeout in seconds. */
export const MIN_HEALTH_INTERVAL_SECONDS = 0.1;
export const MAX_HEALTH_INTERVAL_SECONDS = 3600;
export const MIN_HEALTH_TIMEOUT_SECONDS = 0.05;
export const MAX_HEALTH_TIMEOUT_SECONDS = 60;
/** Healthy/unhealthy thresholds and half-open successes. */
export const MAX_HEALTH_THRESHOLD = 100;
/** `health.slow_start` in seconds. */
export const MAX_SLOW_START_SECONDS = 3600;
/** The circuit breaker's failure counts and its window/open durations in seconds. */
export const MAX_BREAKER_FAILURES = 100_000;
export const MAX_BREAKER_SECONDS = 3600;
/** `retries.attempts`: attempts in all, the first included (SMG's `--retry-max-retries` counts the same way). */
export const MAX_RETRY_ATTEMPTS = 10;
/** `retries.budget_min_per_second`: retries a service may always make per second, per host. */
export const MAX_RETRY_BUDGET_MIN_PER_SECOND = 10_000;
/** `admission.max_concurrency`: requests forwarded at once per replica. */
export const MAX_ADMISSION_CONCURRENCY = 100_000;
/** `admission.queue_size`: requests waiting for a slot per host (each costs a parked socket and its buffered body). */
export const MAX_ADMISSION_QUEUE = 100_000;
/** `admission.queue_timeout` in seconds. */
export const MAX_ADMISSION_QUEUE_TIMEOUT_SECONDS = 300;

// ── Incremental configuration (docs/configuration-delivery.md) ──
/**
 * Services on one gateway. The targets are 10,000; each service is a row in the gateway's object
 * and an entry in its hosts' configuration documents. The agents' reports (stats, rejections,
 * routers) carry at most one entry per service, so their bounds are this number too.
 */
export const MAX_SERVICES_PER_GATEWAY = 25_000;
/**
 * Bytes of a gateway's configuration document (its services' entries, as measured when each last
 * changed). A Workers WebSocket message is at most 32 MiB; the 8 MiB left cover the envelope and
 * entries that grew without a change of their own (a longer domain: ~250 bytes × 25,000 services).
 */
export const MAX_CONFIG_DOCUMENT_BYTES = 24 * 1024 * 1024;
