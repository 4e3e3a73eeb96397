/**
 * @module
 * Bindings of the Worker and its Durable Objects (see wrangler.toml). A module that needs a few of
 * them takes `Pick<Env, …>`, so its signature says what it reads.
 *
 * The namespaces' object classes are not imported here: `worker/index.ts`, the one module that knows
 * the classes (it exports them to workerd), registers them in `ObjectClasses` by declaration merging.
 * The Worker's routes and the objects then call typed stubs of each other without importing each
 * other, and the stubs' types are the classes' own, so no restated RPC contract can drift from them.
 */

/**
 * The classes behind `GATEWAYS` and `WEBHOOKS`, filled in by `worker/index.ts`:
 * `declare module "../core/env.ts" { interface ObjectClasses { GATEWAYS: GatewayObject; … } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by declaration merging (see above).
export interface ObjectClasses {}

/** The class registered for a namespace; `undefined` (an untyped stub) where none is, as in node-side type checks. */
type ObjectClass<K extends string> = K extends keyof ObjectClasses ? ObjectClasses[K] : undefined;

export interface Env {
  DB: D1Database;
  /** One GatewayObject per gateway, named `<project id>/<gateway name>`. */
  GATEWAYS: DurableObjectNamespace<ObjectClass<"GATEWAYS">>;
  /** One dispatcher per webhook endpoint, named by its id. */
  WEBHOOKS: DurableObjectNamespace<ObjectClass<"WEBHOOKS">>;
  /** Global admin bearer token (like dstack's server admin token). */
  ADMIN_TOKEN: string;
  /** base64 of 32 bytes: AES-256-GCM key for backends' credentials. */
  CREDENTIALS_KEY: string;
  /** Private ES256 JWK (JSON) that signs agent tokens. */
  AGENT_SIGNING_KEY: string;
  LOCAL_HOST_DAEMON_URL?: string;
  /** https URL of the agent package tarball (npm pack) that cloud hosts install at first boot. */
  AGENT_PACKAGE_URL?: string;
  /** Deadline of one cloud API call in milliseconds (default 20000). */
  CLOUD_API_TIMEOUT_MS?: string;
  /**
   * Pause between polls of a cloud operation, and before the first in-call retry, in milliseconds.
   * Unset in production (the backends' defaults apply); the tests shorten them for the fake clouds.
   */
  CLOUD_POLL_INTERVAL_MS?: string;
  CLOUD_RETRY_DELAY_MS?: string;
  /** Between the object's looks at a provisioning host (tests against fake clouds; unset: 2 s). */
  CLOUD_PROVISION_POLL_MS?: string;
  LOCAL_HOST_DAEMON_TOKEN?: string;
  /** Public base URL of this control plane, given to agents; defaults to the request's origin. */
  PUBLIC_URL?: string;
  /** Milliseconds one webhook delivery attempt may take (default 10000). */
  WEBHOOK_ATTEMPT_TIMEOUT_MS?: string;
}
