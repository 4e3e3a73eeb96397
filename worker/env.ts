/**
 * @module
 * Bindings of the Worker and its Durable Objects (see wrangler.toml).
 */
import type { GatewayObject } from "../durable-objects/gateway-object.ts";
import type { WebhookDispatcher } from "../durable-objects/webhook-dispatcher.ts";

export interface Env {
  DB: D1Database;
  GATEWAYS: DurableObjectNamespace<GatewayObject>;
  /** One dispatcher per webhook endpoint, named by its id. */
  WEBHOOKS: DurableObjectNamespace<WebhookDispatcher>;
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
  LOCAL_HOST_DAEMON_TOKEN?: string;
  /** Public base URL of this control plane, given to agents; defaults to the request's origin. */
  PUBLIC_URL?: string;
  /** Milliseconds one webhook delivery attempt may take (default 10000). */
  WEBHOOK_ATTEMPT_TIMEOUT_MS?: string;
}
