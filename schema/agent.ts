/**
 * @module
 * What passes between the control plane and a gateway host's agent: the bootstrap document carried
 * in a host's user-data, and the agent API (`/api/v1/agent/…`) it calls with it.
 */
import * as v from "valibot";
import { MAX_REPORT_TEXT, RouterReports } from "./agent-protocol.ts";
import { mapping } from "./issues.ts";
import { text } from "./text.ts";

/** Written into user-data by the GatewayObject; read by the agent at boot. */
export const AgentBootstrap = mapping({
  /** Base URL of the control plane's HTTPS API, e.g. `https://gateplane.example.workers.dev`. */
  control_plane_url: v.pipe(v.string(), v.url("expected the control-plane URL")),
  /** Address of the gateway's Durable Object (64 hex characters). */
  object_id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "expected 64 hex characters")),
  gateway_id: v.pipe(v.string(), v.uuid("expected a UUID")),
  gateway_name: v.string(),
  project_name: v.string(),
  replica_num: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** One-time secret exchanged for the agent's first token; useless once used. */
  bootstrap_secret: v.pipe(v.string(), v.minLength(32)),
});
export type AgentBootstrap = v.InferOutput<typeof AgentBootstrap>;

export const AgentRegisterRequest = mapping({
  object_id: AgentBootstrap.pipe[1].entries.object_id,
  gateway_id: AgentBootstrap.pipe[1].entries.gateway_id,
  replica_num: AgentBootstrap.pipe[1].entries.replica_num,
  bootstrap_secret: AgentBootstrap.pipe[1].entries.bootstrap_secret,
  /** Agent software version, shown in the API. */
  version: v.optional(v.pipe(text(), v.maxLength(64))),
});

export const AgentHeartbeatRequest = mapping({
  version: v.optional(v.pipe(text(), v.maxLength(64))),
  status: v.optional(v.picklist(["healthy", "degraded"]), "healthy"),
  message: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(MAX_REPORT_TEXT)))),
  /** As in the WebSocket's `health`; absent from older agents. */
  routers: v.optional(RouterReports),
});

/** The proxy holds a request for a service scaled to zero (HTTP fallback of the WebSocket message). */
export const AgentScaleFromZeroRequest = mapping({
  service: v.pipe(v.string("expected a service name"), v.minLength(1, "must not be empty"), v.maxLength(64)),
});

/** Answer to register and to token refresh. */
export interface AgentTokenResponse {
  token: string;
  /** Seconds since the epoch. Refresh well before (the agent refreshes at half-life). */
  expires_at: number;
  gateway_id: string;
  replica_num: number;
}

/** JWT audience for agent tokens: they are accepted by the agent API and nothing else. */
export const AGENT_TOKEN_AUDIENCE = "gateplane-agent";
export const AGENT_TOKEN_TTL_SECONDS = 900;
