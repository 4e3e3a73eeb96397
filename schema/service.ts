/**
 * @module
 * A service on a gateway (`type: service` files and the services API): how the gateway exposes
 * `<name>.<domain>`, plus its replicas' endpoints, which the orchestrator that runs them registers
 * and removes at run time (`POST/DELETE …/services/:name/replicas`). Its `retries:` and `admission:`
 * fields are defined in `resilience.ts`, its `health:` in `health.ts`.
 */
import * as v from "valibot";
import { ENGINES } from "./engine.ts";
import { NAME_PATTERN } from "./gateway.ts";
import { HealthInput } from "./health.ts";
import {
  checkInputTree,
  describeType,
  expected,
  type FieldIssue,
  fromValibot,
  isMapping,
  mapping,
  oneOf,
  strictEntries,
  ValidationError,
} from "./issues.ts";
import * as L from "./limits.ts";
import { Admission, Retries } from "./resilience.ts";
import { Router } from "./router.ts";
import { REPLICA_ROLES, type ReplicaRole, Replicas, replicaGroupIssues, Scaling } from "./service-scaling.ts";
import { text } from "./text.ts";
import { duration, size } from "./units.ts";

export {
  DEFAULT_HOLD_TIMEOUT_SECONDS,
  holdTimeoutSeconds,
  REPLICA_ROLES,
  type ReplicaGroup,
  type ReplicaRole,
  SCALING_METRICS,
  SCALING_TARGET_UNITS,
  SCALING_WINDOWS,
  type ScalingMetric,
} from "./service-scaling.ts";

export const DEFAULT_CLIENT_MAX_BODY_SIZE = 64 * 1024 * 1024;
export const DEFAULT_READ_TIMEOUT_SECONDS = 300;
export const RESERVED_SERVICE_NAMES = ["gateway"] as const;
/**
 * `usage:` of a service, for token counts of streamed chat/completions responses. `include`: the
 * gateway asks the replica for usage (`stream_options.include_usage: true`) and withholds the extra
 * usage chunk from clients that did not ask for it, so counts are exact. `as_requested`: requests
 * are never rewritten; streams without usage have their output tokens estimated.
 */
export const USAGE_MODES = ["include", "as_requested"] as const;
export type UsageMode = (typeof USAGE_MODES)[number];
export const DEFAULT_USAGE: UsageMode = "as_requested";

/** A service's own `router:`, replacing the gateway's as a whole (same shape and defaults). */
export const RouterOverride = Router;

/** dstack's `RateLimit`, with its validation; the proxy enforces it (`proxy/rate-limit.ts`). */
export const RateLimit = mapping({
  prefix: v.optional(
    v.pipe(
      text(expected("a path prefix")),
      v.maxLength(4094, "at most 4094 characters"),
      v.regex(/^\/[^\s\\{}]*$/, "must start with / and contain no spaces, backslashes or braces"),
    ),
    "/",
  ),
  key: v.optional(
    v.variant(
      "type",
      [
        mapping({ type: v.literal("ip_address") }).pipe[1],
        mapping({
          type: v.literal("header"),
          header: v.pipe(
            v.string(expected("a header name")),
            v.maxLength(500, "at most 500 characters"),
            v.regex(/^[a-zA-Z0-9-_]+$/, "expected a header name of letters, digits, '-' or '_'"),
          ),
        }).pipe[1],
      ],
      oneOf(["ip_address", "header"]),
    ),
    { type: "ip_address" },
  ),
  rps: v.pipe(
    v.number(expected("requests per second")),
    v.finite(expected("requests per second")),
    v.minValue(L.MIN_RPS, "must be at least 1/60 (one request a minute)"),
    v.maxValue(L.MAX_RPS, `must be at most ${L.MAX_RPS}`),
  ),
  burst: v.optional(
    v.pipe(
      v.number(expected("an integer")),
      v.integer("expected an integer"),
      v.minValue(0, "must be at least 0"),
      v.maxValue(L.MAX_BURST, `must be at most ${L.MAX_BURST}`),
    ),
    0,
  ),
});

const ModelObject = mapping({
  type: v.optional(v.picklist(["chat"], oneOf(["chat"])), "chat"),
  name: v.pipe(text(expected("a model name")), v.minLength(1, "must not be empty")),
  format: v.optional(v.picklist(["openai"], oneOf(["openai"])), "openai"),
  prefix: v.optional(v.pipe(text(expected("a path prefix")), v.regex(/^\/[^\s]*$/, "must start with /")), "/v1"),
});

/** A model name (`model: llama-3`) or the full mapping; errors inside the mapping keep their path. */
const Model = v.pipe(
  v.unknown(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    if (typeof value === "string" && value.length > 0) {
      const checked = v.safeParse(text(), value);
      if (!checked.success) {
        addIssue({ message: checked.issues[0].message });
        return NEVER;
      }
      return { type: "chat" as const, name: value, format: "openai" as const, prefix: "/v1" };
    }
    if (!isMapping(value)) {
      addIssue({ message: `expected a model name or a mapping with name, got ${describeType(value)}` });
      return NEVER;
    }
    const inner = v.safeParse(ModelObject, value);
    if (inner.success) return inner.output;
    for (const issue of inner.issues) {
      const path = issue.path as [v.IssuePathItem, ...v.IssuePathItem[]] | undefined;
      addIssue({ message: issue.message, ...(path ? { path } : {}) });
    }
    return NEVER;
  }),
);

export const ServiceConfigurationInput = mapping(
  {
    type: v.picklist(["service"], oneOf(["service"])),
    name: v.pipe(
      v.string(expected("a string")),
      v.regex(NAME_PATTERN, "must start with a lowercase letter and contain 2–41 lowercase letters, digits or hyphens"),
      v.check(
        (n) => !(RESERVED_SERVICE_NAMES as readonly string[]).includes(n),
        "gateway is reserved for the gateway's OpenAI-compatible entrypoint",
      ),
    ),
    /** Gateway name; the project's default gateway when omitted. */
    gateway: v.optional(
      v.nullable(v.pipe(v.string(expected("a gateway name")), v.regex(NAME_PATTERN, "expected a gateway name"))),
    ),
    https: v.optional(v.union([v.boolean(), v.literal("auto")], oneOf(["true", "false", "auto"])), "auto"),
    /** `Strict-Transport-Security` on HTTPS responses: true (a year) or {max_age, include_subdomains}. */
    hsts: v.optional(
      v.union(
        [
          v.boolean(),
          strictEntries({
            max_age: v.pipe(
              v.number(expected("a number of seconds")),
              v.integer("expected a whole number of seconds"),
              v.minValue(0, "must be at least 0"),
              v.maxValue(L.MAX_HSTS_MAX_AGE, `at most ${L.MAX_HSTS_MAX_AGE} (two years)`),
            ),
            include_subdomains: v.optional(v.boolean(expected("true or false")), false),
          }),
        ],
        expected("true, false or a mapping {max_age, include_subdomains}"),
      ),
      false,
    ),
    auth: v.optional(v.boolean(expected("true or false")), true),
    client_max_body_size: v.optional(size(L.MAX_CLIENT_MAX_BODY_SIZE, "1024GB"), DEFAULT_CLIENT_MAX_BODY_SIZE),
    read_timeout: v.optional(
      duration(L.MIN_READ_TIMEOUT_SECONDS, L.MAX_READ_TIMEOUT_SECONDS, "a timeout"),
      DEFAULT_READ_TIMEOUT_SECONDS,
    ),
    rate_limits: v.optional(v.array(RateLimit, expected("a list of rate limits")), []),
    model: v.optional(v.nullable(Model)),
    replicas: v.optional(Replicas, 1),
    scaling: v.optional(v.nullable(Scaling)),
    router: v.optional(v.nullable(RouterOverride)),
    usage: v.optional(v.picklist(USAGE_MODES, oneOf(USAGE_MODES)), DEFAULT_USAGE),
    /** The replicas' model server, for load signals (docs/engine-signals.md); absent or null: detect. */
    engine: v.optional(v.nullable(v.picklist(ENGINES, oneOf(ENGINES)))),
    /** Replica health: active checks, wait for the first check, slow start, circuit breaker (`health.ts`, docs/health.md); absent or null: the defaults. */
    health: v.optional(v.nullable(HealthInput)),
    /** Retries on another replica (`resilience.ts`; absent or null: `DEFAULT_RETRIES`). */
    retries: v.optional(v.nullable(Retries)),
    /** Admission control (absent or null: none, every request is forwarded at once). */
    admission: v.optional(v.nullable(Admission)),
  },
  "a mapping with type: service",
);

export type ServiceConfiguration = v.InferOutput<typeof ServiceConfigurationInput>;
export type RateLimitConfig = v.InferOutput<typeof RateLimit>;
export type ModelConfig = NonNullable<ServiceConfiguration["model"]>;

/** Validates a service and applies defaults; dstack's cross-field rules included. */
export function parseServiceConfiguration(input: unknown): ServiceConfiguration {
  if (!isMapping(input)) {
    throw new ValidationError([
      { path: [], message: `expected a mapping with type: service, got ${describeType(input)}` },
    ]);
  }
  checkInputTree(input);
  const result = v.safeParse(ServiceConfigurationInput, input);
  if (!result.success) throw new ValidationError(fromValibot(result.issues));
  // Absent and null mean the same; the stored (and diffed) form always has the key.
  const s: ServiceConfiguration = {
    ...result.output,
    gateway: result.output.gateway ?? null,
    model: result.output.model ?? null,
    scaling: result.output.scaling ?? null,
    router: result.output.router ?? null,
    engine: result.output.engine ?? null,
    health: result.output.health ?? null,
    retries: result.output.retries ?? null,
    admission: result.output.admission ?? null,
  };
  const issues: FieldIssue[] = [];
  const prefixes = s.rate_limits.map((r) => r.prefix);
  const repeated = [...new Set(prefixes.filter((p, i) => prefixes.indexOf(p) !== i))];
  if (repeated.length > 0) {
    issues.push({
      path: ["rate_limits"],
      message: `prefixes ${repeated.join(", ")} are used more than once; each prefix may have one limit`,
    });
  }
  const ranged = s.replicas.min !== s.replicas.max;
  if (s.replicas.groups) issues.push(...replicaGroupIssues(s));
  else if (ranged && !s.scaling)
    issues.push({ path: ["scaling"], message: "required when replicas is a range (min..max)" });
  else if (!ranged && s.scaling)
    issues.push({ path: ["replicas"], message: "must be a range min..max when scaling is set" });
  if (issues.length > 0) throw new ValidationError(issues);
  return s;
}

/**
 * A configuration as stored by this or an older control plane: fields added since get their
 * defaults, so a service stored before `usage` existed shows no change and is not a stale plan.
 */
export function storedServiceConfiguration(stored: ServiceConfiguration): ServiceConfiguration {
  // `hsts` came with HTTPS (absent from services stored before it), `usage` with LLM metrics,
  // `engine` with engine signals, `health` with replica health, `retries` and `admission` with
  // retries and admission control.
  if (
    stored.usage &&
    stored.hsts !== undefined &&
    stored.hsts !== null &&
    stored.engine !== undefined &&
    stored.health !== undefined &&
    stored.retries !== undefined &&
    stored.admission !== undefined
  )
    return stored;
  return {
    ...stored,
    hsts: stored.hsts ?? false,
    usage: stored.usage ?? DEFAULT_USAGE,
    engine: stored.engine ?? null,
    health: stored.health ?? null,
    retries: stored.retries ?? null,
    admission: stored.admission ?? null,
  };
}

/** A replica's id as the orchestrator names it (a path segment of the replicas API). */
export const ReplicaId = v.pipe(
  v.string(expected("a replica id")),
  v.regex(/^[A-Za-z0-9._:-]{1,128}$/, "expected 1–128 of letters, digits, '.', '_', ':' or '-'"),
);

/** Where a replica listens, as the proxy accepts it. */
const ReplicaUrl = v.pipe(
  text(expected("a URL")),
  v.url("expected a URL such as http://10.0.0.5:8000"),
  v.check((u) => {
    try {
      const url = new URL(u);
      // The proxy refuses credentials in either part (`proxy/routes.ts`): so does the API.
      return (
        (url.protocol === "http:" || url.protocol === "https:") &&
        !url.search &&
        !url.hash &&
        !url.username &&
        !url.password
      );
    } catch {
      return false;
    }
  }, "expected http(s)://host:port with an optional path prefix, and no query, fragment or credentials"),
);

/** SGLang's `--disaggregation-bootstrap-port` range: a TCP port. */
const BootstrapPort = v.pipe(
  v.number(expected("a port number")),
  v.integer(expected("a port number")),
  v.minValue(1, "must be a port from 1 to 65535"),
  v.maxValue(65535, "must be a port from 1 to 65535"),
);

/**
 * A replica endpoint as the orchestrator registers it. `role` (absent or null: co-located) and, for
 * a prefill replica, `bootstrap_port`: its `--disaggregation-bootstrap-port`, which decode workers
 * dial for the KV transfer (absent or null: none is sent, as SMG's `--prefill URL none`).
 */
export const ReplicaEndpoint = v.pipe(
  mapping({
    id: ReplicaId,
    url: ReplicaUrl,
    role: v.optional(v.nullable(v.picklist(REPLICA_ROLES, oneOf(REPLICA_ROLES))), null),
    bootstrap_port: v.optional(v.nullable(BootstrapPort), null),
  }),
  v.forward(
    v.check(
      (r) => r.bootstrap_port === null || r.role === "prefill",
      "applies to prefill replicas only (role: prefill)",
    ),
    ["bootstrap_port"],
  ),
);
export type ReplicaEndpoint = v.InferOutput<typeof ReplicaEndpoint>;

/**
 * Why a PD service cannot route yet (null: it can): it needs at least one prefill and one decode
 * replica. One wording for the API's service view and the proxy's 503.
 */
export function pdUnroutable(service: string, prefill: number, decode: number): string | null {
  if (prefill > 0 && decode > 0) return null;
  return `service ${service} disaggregates prefill and decode and needs at least one replica of each role (has ${prefill} prefill, ${decode} decode)`;
}

/** The API's `pd` view of a service: its replicas per role and whether it can route. */
export interface PdView {
  prefill: number;
  decode: number;
  routable: boolean;
  reason: string | null;
}

/**
 * The `pd` view of service `name` (null unless its effective router disaggregates, `pd`): one
 * computation for the control plane's service view and the fake control plane's.
 */
export function pdView(name: string, pd: boolean, replicas: readonly { role?: ReplicaRole | null }[]): PdView | null {
  if (!pd) return null;
  const prefill = replicas.filter((r) => r.role === "prefill").length;
  const decode = replicas.filter((r) => r.role === "decode").length;
  const reason = pdUnroutable(name, prefill, decode);
  return { prefill, decode, routable: reason === null, reason };
}
