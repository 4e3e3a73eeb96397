/**
 * @module
 * Messages on the agent's long-lived WebSocket to its GatewayObject
 * (`GET /api/v1/agent/connect`, Upgrade, `Authorization: Bearer <agent JWT>`), JSON text frames.
 * The object pushes the current document on connect and every new version after; the agent answers
 * each with an ACK (applied) or NACK (rejected, with the reason), Envoy-style, and reports stats.
 */
import * as v from "valibot";
import type { ConfigDocument } from "./config-document.ts";

export type ServerMessage = { type: "config"; document: ConfigDocument } | { type: "pong" };

const Window = v.object({
  requests: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** Mean request time in seconds over the window (only requests that reached a replica). */
  request_time: v.pipe(v.number(), v.minValue(0)),
});

export const ServiceStats = v.object({
  service: v.string(),
  windows: v.object({ "30": Window, "60": Window, "300": Window }),
});
export type ServiceStats = v.InferOutput<typeof ServiceStats>;

const ServiceName = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

export const AgentMessage = v.variant("type", [
  v.object({ type: v.literal("ack"), version: v.number() }),
  v.object({ type: v.literal("nack"), version: v.number(), error: v.pipe(v.string(), v.maxLength(2000)) }),
  v.object({
    type: v.literal("stats"),
    /** Milliseconds since the epoch when the windows were computed. */
    at: v.number(),
    services: v.pipe(v.array(ServiceStats), v.maxLength(1000)),
  }),
  v.object({
    type: v.literal("health"),
    status: v.picklist(["healthy", "degraded"]),
    message: v.nullable(v.pipe(v.string(), v.maxLength(1000))),
    version: v.nullable(v.pipe(v.string(), v.maxLength(64))),
  }),
  v.object({ type: v.literal("ping") }),
  /**
   * The proxy holds a request for a service that has no replica (its document says it scales to
   * zero): the control plane raises the desired count at once. Sent at most every few seconds per
   * service; repeats are harmless.
   */
  v.object({ type: v.literal("scale_from_zero"), service: ServiceName }),
]);
export type AgentMessage = v.InferOutput<typeof AgentMessage>;
