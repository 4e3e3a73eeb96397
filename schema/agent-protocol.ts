/**
 * @module
 * Messages on the agent's long-lived WebSocket to its GatewayObject
 * (`GET /api/v1/agent/connect`, Upgrade, `Authorization: Bearer <agent JWT>`), JSON text frames.
 * The object pushes the current document on connect and every new version after; the agent answers
 * each with an ACK (applied) or NACK (rejected, with the reason), Envoy-style, and reports stats.
 */
import * as v from "valibot";
import type { ConfigDelta } from "./config-delta.ts";
import type { ConfigDocument } from "./config-document.ts";
import { EngineSignals } from "./engine.ts";
import { ReplicaHealth } from "./health.ts";
import { MAX_SERVICE_REPLICAS } from "./limits.ts";
import { LlmWindow } from "./llm-stats.ts";
import { MeshDigest } from "./mesh.ts";

/**
 * Close codes of the socket (4000–4999 are the application's). The agent acts on `TOKEN_REFUSED`
 * (get a new token, then reconnect); the others it logs and reconnects after back-off.
 */
export const CLOSE_CODES = {
  /** A frame that is not a protocol message. */
  BAD_MESSAGE: 4000,
  /** The agent's token expired or is no longer valid. */
  TOKEN_REFUSED: 4001,
  /** The replica this agent stood for is gone (terminated or re-registered elsewhere). */
  REPLICA_GONE: 4003,
} as const;

/** Longest NACK error (a config document's problems, joined), in characters; the sender truncates. */
export const MAX_NACK_ERROR = 2000;
/** Longest short text of a report: a health message, a certificate's last error, a service's rejection. */
export const MAX_REPORT_TEXT = 1000;
/** Most entries of one list in a report: services in stats, router reports. */
export const MAX_REPORT_ENTRIES = 1000;

export type ServerMessage =
  | { type: "config"; document: ConfigDocument }
  /** What changed since `delta.base_version` (`config-delta.ts`); an agent at another version asks to resync. */
  | { type: "config_delta"; delta: ConfigDelta }
  | { type: "pong" }
  /** Another gateway replica's digest, relayed as it came (`schema/mesh.ts`). */
  | { type: "mesh"; digest: MeshDigest };

const Window = v.object({
  requests: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** Mean request time in seconds over the window (only requests that reached a replica). */
  request_time: v.pipe(v.number(), v.minValue(0)),
  /** Distributions and tokens (`llm-stats.ts`); absent from older agents, and from windows without traffic. */
  llm: v.optional(LlmWindow),
});

export const ServiceStats = v.object({
  service: v.string(),
  windows: v.object({ "30": Window, "60": Window, "300": Window }),
  /**
   * The engine signals of the service's replicas as this host last read them (`schema/engine.ts`);
   * absent from older agents and for services whose engines are not scraped (`engine: none`).
   */
  engine: v.optional(v.pipe(v.array(EngineSignals), v.maxLength(MAX_SERVICE_REPLICAS))),
  /**
   * Each replica's health on this host, the worst over its proxy processes (`schema/health.ts`);
   * absent from older agents.
   */
  health: v.optional(v.pipe(v.array(ReplicaHealth), v.maxLength(MAX_SERVICE_REPLICAS))),
});
export type ServiceStats = v.InferOutput<typeof ServiceStats>;

/** One host's certificate as the agent reports it (the API shows it per gateway replica). */
export const CertificateState = v.object({
  host: v.pipe(v.string(), v.maxLength(253)),
  /** `issued`: a valid certificate is served; `pending`: none yet; `failed`: none, and the last try failed. */
  status: v.picklist(["pending", "issued", "failed"]),
  /** ISO times; null when unknown. */
  not_after: v.nullable(v.string()),
  issued_at: v.nullable(v.string()),
  /** When the agent will renew (ARI window or a third of the lifetime left). */
  renew_at: v.nullable(v.string()),
  /** Why the last issuance or renewal failed (cleared by the next success). */
  last_error: v.nullable(v.pipe(v.string(), v.maxLength(MAX_REPORT_TEXT))),
  last_error_at: v.nullable(v.string()),
  /** When the agent tries again after a failure (back-off, Retry-After). */
  next_attempt_at: v.nullable(v.string()),
});
export type CertificateState = v.InferOutput<typeof CertificateState>;

export const MAX_CERTIFICATE_HOSTS = MAX_REPORT_ENTRIES;
/**
 * How a service whose router is `sglang` is balanced on one gateway host: through the external SGLang
 * Model Gateway the agent runs, or by the proxy's built-in policies (with the reason, e.g. "sglang
 * router not installed on this host").
 */
export const RouterReport = v.object({
  service: v.pipe(v.string(), v.maxLength(200)),
  mode: v.picklist(["external", "built-in"], "expected one of external, built-in"),
  reason: v.nullable(v.pipe(v.string(), v.maxLength(500))),
});
export type RouterReport = v.InferOutput<typeof RouterReport>;
export const RouterReports = v.pipe(v.array(RouterReport), v.maxLength(MAX_REPORT_ENTRIES));
const ServiceName = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

/**
 * A service of an applied document that the agent could not serve as configured (the rest of the
 * document is served): `kept` when it still serves the service's last good state, else it is left
 * out. `error` names the field (`services[2].client_max_body_size: …`).
 */
export const ServiceRejection = v.object({
  service: v.pipe(v.string(), v.maxLength(200)),
  error: v.pipe(v.string(), v.maxLength(MAX_REPORT_TEXT)),
  kept: v.boolean(),
});
export type ServiceRejection = v.InferOutput<typeof ServiceRejection>;
export const MAX_SERVICE_REJECTIONS = MAX_REPORT_ENTRIES;
/** Absent from older agents (which NACKed the whole document instead). */
export const ServiceRejections = v.optional(v.pipe(v.array(ServiceRejection), v.maxLength(MAX_SERVICE_REJECTIONS)), []);

export const AgentMessage = v.variant("type", [
  /** Applied; `rejected` lists the services of the document this host does not serve as configured. */
  v.object({ type: v.literal("ack"), version: v.number(), rejected: ServiceRejections }),
  v.object({ type: v.literal("nack"), version: v.number(), error: v.pipe(v.string(), v.maxLength(MAX_NACK_ERROR)) }),
  v.object({
    type: v.literal("stats"),
    /** Milliseconds since the epoch when the windows were computed. */
    at: v.number(),
    services: v.pipe(v.array(ServiceStats), v.maxLength(MAX_REPORT_ENTRIES)),
  }),
  v.object({
    type: v.literal("health"),
    status: v.picklist(["healthy", "degraded"]),
    message: v.nullable(v.pipe(v.string(), v.maxLength(MAX_REPORT_TEXT))),
    version: v.nullable(v.pipe(v.string(), v.maxLength(64))),
    /** Router modes of the host's sglang services; absent from agents older than the external router. */
    routers: v.optional(RouterReports),
  }),
  v.object({ type: v.literal("ping") }),
  /**
   * A delta did not apply on top of what this agent holds (a gap: it missed one, or restarted): the
   * object answers with a delta from `version`, or a whole document when it cannot (`version` null,
   * or older than what it remembers). Older agents never send it (they only take whole documents).
   */
  v.object({ type: v.literal("resync"), version: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0))) }),
  /** Every host's certificate, sent on connect and whenever one changes (added with HTTPS; older agents never send it). */
  v.object({
    type: v.literal("certificates"),
    hosts: v.pipe(v.array(CertificateState), v.maxLength(MAX_CERTIFICATE_HOSTS)),
  }),
  /**
   * The proxy holds a request for a service that has no replica (its document says it scales to
   * zero): the control plane raises the desired count at once. Sent at most every few seconds per
   * service; repeats are harmless.
   */
  v.object({ type: v.literal("scale_from_zero"), service: ServiceName }),
  /**
   * What this host routed and admitted since its last digest (`schema/mesh.ts`), for the gateway's
   * other replicas: the object relays it to their sockets and keeps nothing. Older agents never send it.
   */
  v.object({ type: v.literal("mesh"), digest: MeshDigest }),
]);
export type AgentMessage = v.InferOutput<typeof AgentMessage>;
