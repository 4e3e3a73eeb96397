/**
 * @module
 * The versioned configuration document a GatewayObject gives its agents: everything the proxy needs
 * to serve traffic without asking the control plane anything per request. Agents validate it with
 * this schema before applying it (and NACK what does not parse).
 */
import * as v from "valibot";
import { RouterDocument as RouterSchema } from "./router.ts";

export const ConfigRateLimit = v.object({
  prefix: v.string(),
  key: v.variant("type", [
    v.object({ type: v.literal("ip_address") }),
    v.object({ type: v.literal("header"), header: v.string() }),
  ]),
  rps: v.number(),
  burst: v.number(),
});

export const ConfigReplica = v.object({
  id: v.string(),
  /** Where the replica listens: `http(s)://host:port[/prefix]`. */
  url: v.pipe(v.string(), v.url()),
});

export const ConfigService = v.object({
  name: v.string(),
  project: v.string(),
  /** Lower-cased `<name>.<domain>` the proxy matches on the Host header (port ignored). */
  host: v.string(),
  /** Whether the gateway terminates HTTPS for this host (certificates arrive with the HTTPS issue). */
  https: v.boolean(),
  /** `Strict-Transport-Security` on HTTPS responses; null (or absent, from older control planes): none. */
  hsts: v.optional(v.nullable(v.object({ max_age: v.number(), include_subdomains: v.boolean() })), null),
  auth: v.boolean(),
  client_max_body_size: v.number(),
  read_timeout_ms: v.number(),
  rate_limits: v.array(ConfigRateLimit),
  model: v.nullable(v.object({ name: v.string(), format: v.literal("openai"), prefix: v.string() })),
  /** Effective router: the service's override, else the gateway's; null = built-in round robin (`schema/router.ts`). */
  router: v.nullable(RouterSchema),
  replicas: v.array(ConfigReplica),
  /**
   * Set for services that scale to zero (`replicas: 0..N`): while the service has no replicas a
   * request is held up to `timeout_ms` for one to register, and the proxy tells the control plane.
   * Null (or absent, from older control planes): no replicas → 503 at once.
   */
  hold: v.optional(v.nullable(v.object({ timeout_ms: v.pipe(v.number(), v.integer(), v.minValue(1)) })), null),
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
  generated_at: v.string(),
});

export type ConfigDocument = v.InferOutput<typeof ConfigDocument>;
export type ConfigService = v.InferOutput<typeof ConfigService>;
export type ConfigReplica = v.InferOutput<typeof ConfigReplica>;
