/**
 * @module
 * The versioned configuration document a GatewayObject gives its agents: everything the proxy needs
 * to serve traffic without asking the control plane anything per request. Agents validate it with
 * this schema before applying it (and NACK what does not parse).
 */
import * as v from "valibot";
import { ENGINES } from "./engine.ts";
import { HealthDocument } from "./health.ts";
import * as L from "./limits.ts";
import { DEFAULT_OBSERVABILITY, ObservabilityDocument } from "./observability.ts";
import { RouterDocument as RouterSchema } from "./router.ts";
import { DEFAULT_USAGE, REPLICA_ROLES, USAGE_MODES } from "./service.ts";

/**
 * A whole number from `min` to `max`: the document's numbers have the service schema's bounds
 * (`limits.ts`), so whatever the API accepted the agent accepts, and a value outside them (from a
 * newer or broken control plane) is refused naming its field.
 */
const whole = (min: number, max: number) =>
  v.pipe(
    v.number(),
    v.safeInteger(`expected a whole number from ${min} to ${max}`),
    v.minValue(min, `expected a whole number from ${min} to ${max}`),
    v.maxValue(max, `expected a whole number from ${min} to ${max}`),
  );

export const ConfigRateLimit = v.object({
  prefix: v.string(),
  key: v.variant("type", [
    v.object({ type: v.literal("ip_address") }),
    v.object({ type: v.literal("header"), header: v.string() }),
  ]),
  rps: v.pipe(
    v.number(),
    v.finite(),
    v.minValue(L.MIN_RPS, "expected requests per second ≥ 1/60"),
    v.maxValue(L.MAX_RPS, `expected requests per second ≤ ${L.MAX_RPS}`),
  ),
  burst: whole(0, L.MAX_BURST),
});

export const ConfigReplica = v.object({
  id: v.string(),
  /** Where the replica listens: `http(s)://host:port[/prefix]`. */
  url: v.pipe(v.string(), v.url()),
  /** Prefill/decode role (`schema/service.ts`); absent or null (also from older control planes): co-located. */
  role: v.optional(v.nullable(v.picklist(REPLICA_ROLES))),
  /** A prefill replica's `--disaggregation-bootstrap-port`, injected as `bootstrap_port`; null: none. */
  bootstrap_port: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)))),
});

export const ConfigService = v.object({
  name: v.string(),
  project: v.string(),
  /** Lower-cased `<name>.<domain>` the proxy matches on the Host header (port ignored). */
  host: v.string(),
  /** Whether the gateway terminates HTTPS for this host (certificates arrive with the HTTPS issue). */
  https: v.boolean(),
  /** `Strict-Transport-Security` on HTTPS responses; null (or absent, from older control planes): none. */
  hsts: v.optional(
    v.nullable(v.object({ max_age: whole(0, L.MAX_HSTS_MAX_AGE), include_subdomains: v.boolean() })),
    null,
  ),
  auth: v.boolean(),
  /** Bytes; 0 = no limit. */
  client_max_body_size: whole(0, L.MAX_CLIENT_MAX_BODY_SIZE),
  /** From 1 ms: the service schema's minimum is 1 s, but the proxy itself works with less (its tests do). */
  read_timeout_ms: whole(1, L.MAX_READ_TIMEOUT_SECONDS * 1000),
  rate_limits: v.array(ConfigRateLimit),
  model: v.nullable(v.object({ name: v.string(), format: v.literal("openai"), prefix: v.string() })),
  /** Effective router: the service's override, else the gateway's; null = built-in round robin (`schema/router.ts`). */
  router: v.nullable(RouterSchema),
  replicas: v.array(ConfigReplica),
  /**
   * Token usage of streamed chat/completions requests (`schema/service.ts`): `include` asks the
   * replica for it (`stream_options.include_usage`) and withholds the usage chunk from clients that
   * did not ask; `as_requested` (also when absent, from older control planes) never rewrites a request.
   */
  usage: v.optional(v.picklist(USAGE_MODES), DEFAULT_USAGE),
  /**
   * The replicas' model server (`schema/engine.ts`), whose `/metrics` the host scrapes for load
   * signals; `none`: never scraped; null or absent (also from older control planes): detected from
   * the exposition, for services with a `model` or a `router`.
   */
  engine: v.optional(v.nullable(v.picklist(ENGINES))),
  /**
   * Replica health resolved from the service's `health:` (`schema/health.ts`): active checks, waiting
   * for the first one, slow start, circuit breaker. Null or absent (older control planes): passive
   * health and the breaker's defaults only.
   */
  health: v.optional(v.nullable(HealthDocument)),
  /**
   * Set for services that scale to zero (`replicas: 0..N`): while the service has no replicas a
   * request is held up to `timeout_ms` for one to register, and the proxy tells the control plane.
   * Null (or absent, from older control planes): no replicas → 503 at once.
   */
  hold: v.optional(
    v.nullable(
      v.object({
        timeout_ms: whole(1, L.MAX_HOLD_TIMEOUT_SECONDS * 1000),
      }),
    ),
    null,
  ),
  // ── Retries and admission control (proxy/admission/) ──
  /** The service's `retries` (null or absent, also from older control planes: the defaults). */
  retries: v.optional(
    v.nullable(
      v.object({
        attempts: whole(1, L.MAX_RETRY_ATTEMPTS),
        statuses: v.array(whole(400, 599)),
        on_reset: v.boolean(),
        on_timeout: v.boolean(),
        budget_percent: whole(0, 100),
        budget_min_per_second: whole(0, L.MAX_RETRY_BUDGET_MIN_PER_SECOND),
      }),
    ),
  ),
  /** The service's `admission` (null or absent: none). `max_concurrency` is per replica. */
  admission: v.optional(
    v.nullable(
      v.object({
        max_concurrency: whole(1, L.MAX_ADMISSION_CONCURRENCY),
        queue_size: whole(0, L.MAX_ADMISSION_QUEUE),
        /** From 0 ms (no wait: full → 429 at once) to the schema's maximum. */
        queue_timeout_ms: whole(0, L.MAX_ADMISSION_QUEUE_TIMEOUT_SECONDS * 1000),
        priority_header: v.nullable(v.string()),
      }),
    ),
  ),
  // ── end of retries and admission control ──
});

export const ConfigDocument = v.object({
  /** Monotonic per gateway; bumped by every change of services or replicas. */
  version: v.pipe(v.number(), v.integer(), v.minValue(1)),
  gateway: v.object({
    id: v.string(),
    name: v.string(),
    project: v.string(),
    domain: v.nullable(v.string()),
    router: v.nullable(RouterSchema),
  }),
  services: v.array(ConfigService),
  /** `gateway.<domain>`: reserved for the OpenAI-compatible entrypoint. */
  entrypoint: v.nullable(v.object({ host: v.string() })),
  /**
   * The project's service tokens, for services with `auth`: a token `gps_<id>_<secret>` is valid
   * when `id` is listed and SHA-256(secret) matches. Revocation arrives as a new version. API tokens
   * are never here: they do not open services (`schema/tokens.ts`). Absent (older control planes,
   * whose `auth_tokens` were API tokens): no token opens anything, which fails closed.
   */
  service_tokens: v.optional(v.array(v.object({ id: v.string(), secret_sha256: v.string() })), []),
  /**
   * ACME for the gateway's HTTPS hosts (services with `https` and the entrypoint); null or absent:
   * no certificates on the host (`certificate: null`, or ACM at the load balancer). The EAB HMAC key
   * travels only here (to the agent, over its authenticated socket) and is never logged.
   */
  acme: v.optional(
    v.nullable(
      v.object({
        /** null: Let's Encrypt production. */
        directory_url: v.nullable(v.string()),
        eab: v.nullable(v.object({ kid: v.string(), hmac_key: v.string() })),
        /** Contact address for the ACME account; absent from older control planes. */
        email: v.optional(v.nullable(v.string()), null),
      }),
    ),
    null,
  ),
  /**
   * What the gateway's hosts export of their traffic (`schema/observability.ts`), every default
   * applied; absent (older control planes): the defaults.
   */
  observability: v.optional(ObservabilityDocument, DEFAULT_OBSERVABILITY),
  generated_at: v.string(),
});

export type ConfigDocument = v.InferOutput<typeof ConfigDocument>;
export type ConfigService = v.InferOutput<typeof ConfigService>;
export type ConfigReplica = v.InferOutput<typeof ConfigReplica>;
