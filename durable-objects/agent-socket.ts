/**
 * @module
 * The agent's socket protocol on a GatewayObject: one hibernatable WebSocket per gateway replica,
 * accepted after the Worker verified the agent's JWT. The object pushes configuration: a whole
 * document on connect, then to agents that take deltas (`?deltas=1`) what changed since the version
 * last sent on their socket (`config-delta.ts`), to older agents whole documents;
 * the agent sends ACK/NACK, stats, health, certificates and scale-from-zero signals, each handed to
 * the module that records it. Close codes (`CLOSE_CODES` of the protocol): TOKEN_REFUSED get a new
 * token and reconnect, REPLICA_GONE the replica is gone, BAD_MESSAGE a message it must not send again.
 */
import * as v from "valibot";
import { AgentMessage, CLOSE_CODES, type ServerMessage } from "../schema/agent-protocol.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";
import { applyResult, currentDocument } from "./agent-config.ts";
import { type AgentIdentity, agentSeen, recordHealth } from "./agent-identity.ts";
import { recordCertificates, recordStats } from "./agent-reports.ts";
import { buildDelta, configAnswer, wholeAnswer } from "./config-delta.ts";
import { deltaPossible } from "./delta-base.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { relayDigest } from "./mesh-relay.ts";
import { recordFromZero } from "./scaling-schedule.ts";

/** What a hibernated agent socket remembers about itself. */
interface SocketAttachment {
  replicaId: string;
  replicaNum: number;
  /** Token expiry (seconds since the epoch): the socket is closed with TOKEN_REFUSED once it passes. */
  exp: number;
  /** The agent takes deltas (it connected with `?deltas=1`); absent on sockets from before deltas. */
  deltas?: boolean;
  /** The version last sent on this socket: the next delta's base (kept here, so hibernation keeps it). */
  sent?: number;
}

/** Keep-alive pings are answered without waking a hibernated object. */
export function answerPings(ctx: DurableObjectState): void {
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
}

/**
 * The upgrade the Worker forwards (the identity in headers only it can set). The statuses here are
 * the upgrade's own protocol, answered to the Worker, which returns them as they are.
 */
export async function acceptAgentSocket(gw: GatewayContext, request: Request): Promise<Response> {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade", { status: 426 });
  }
  const identity: AgentIdentity = {
    gatewayId: request.headers.get("x-gateplane-gateway-id") ?? "",
    replicaId: request.headers.get("x-gateplane-replica-id") ?? "",
    replicaNum: Number(request.headers.get("x-gateplane-replica-num")),
  };
  const exp = Number(request.headers.get("x-gateplane-token-exp"));
  const seen = await agentSeen(gw, identity, null);
  if (!seen.ok) return new Response(seen.error.message, { status: 401 });
  const deltas = new URL(request.url).searchParams.get("deltas") === "1";
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  gw.ctx.acceptWebSocket(server, [identity.replicaId]);
  const document = currentDocument(gw)!;
  server.serializeAttachment({
    replicaId: identity.replicaId,
    replicaNum: identity.replicaNum,
    exp,
    ...(deltas ? { deltas, sent: document.version } : {}),
  } satisfies SocketAttachment);
  send(server, { type: "config", document });
  return new Response(null, { status: 101, webSocket: client });
}

export async function onAgentMessage(gw: GatewayContext, ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
  const att = ws.deserializeAttachment() as SocketAttachment | null;
  if (!att) return ws.close(CLOSE_CODES.BAD_MESSAGE, "unknown socket");
  if (att.exp * 1000 < Date.now()) return ws.close(CLOSE_CODES.TOKEN_REFUSED, "token expired");
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof message === "string" ? message : new TextDecoder().decode(message));
  } catch {
    return ws.close(CLOSE_CODES.BAD_MESSAGE, "messages are JSON");
  }
  const result = v.safeParse(AgentMessage, parsed);
  // Refused whole (nothing of it is recorded), saying which field, so the agent's log tells.
  if (!result.success) return ws.close(CLOSE_CODES.BAD_MESSAGE, refusalReason(parsed, result.issues));
  const r = gw.state.replica(att.replicaId);
  if (!r || r.status === "terminating" || r.status === "terminated") {
    return ws.close(CLOSE_CODES.REPLICA_GONE, "this gateway replica is no longer active");
  }
  const msg = result.output;
  switch (msg.type) {
    case "ping":
      send(ws, { type: "pong" });
      return;
    case "ack":
    case "nack":
      applyResult(
        gw,
        r.id,
        msg.version,
        msg.type === "nack" ? msg.error : null,
        msg.type === "ack" ? msg.rejected : [],
      );
      await gw.flush();
      return;
    case "stats":
      await recordStats(gw, r, msg.services);
      return;
    case "scale_from_zero":
      await recordFromZero(gw, msg.service);
      return;
    case "health":
      await recordHealth(gw, r, msg);
      return;
    case "certificates":
      await recordCertificates(gw, r, msg.hosts);
      return;
    case "mesh":
      relayDigest(gw.ctx.getWebSockets(), ws, msg.digest);
      return;
    case "resync":
      resync(gw, ws, att, msg.version);
      return;
  }
}

export function onAgentClose(ws: WebSocket, code: number, reason: string): void {
  // Complete the close handshake; the agent reconnects by itself.
  try {
    ws.close(code === 1005 ? 1000 : code, reason);
  } catch {
    // already closed
  }
}

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;

/** `stats: services[0].windows.60.llm.ttft.counts: …`, cut to fit a close frame; "unknown message" for other types. */
export function refusalReason(message: unknown, issues: readonly v.BaseIssue<unknown>[]): string {
  const type = (message as { type?: unknown } | null)?.type;
  const known = AgentMessage.options.some((o) => o.entries.type.literal === type);
  const first = fromValibot(issues)[0];
  if (!known || !first) return "unknown message";
  const encoder = new TextEncoder();
  const reason = `${String(type)}: ${formatIssue(first)}`;
  if (encoder.encode(reason).length <= MAX_CLOSE_REASON_BYTES) return reason;
  const chars = [...reason];
  while (encoder.encode(`${chars.join("")}…`).length > MAX_CLOSE_REASON_BYTES) chars.pop();
  return `${chars.join("")}…`;
}

function send(ws: WebSocket, message: ServerMessage | string): void {
  try {
    ws.send(typeof message === "string" ? message : JSON.stringify(message));
  } catch {
    // A socket that cannot take a frame is gone; the agent reconnects and pulls.
  }
}

/**
 * A delta did not apply on the agent (a gap): a delta from the version it holds, or a whole
 * document (it holds none, the current one already, or one a delta cannot start from).
 */
function resync(gw: GatewayContext, ws: WebSocket, att: SocketAttachment, version: number | null): void {
  const g = gw.state.gateway();
  if (!g) return;
  const answer =
    version !== null && deltaPossible(g, version)
      ? ({ type: "config_delta", delta: buildDelta(gw, g, version) } as const)
      : wholeAnswer(gw, g);
  send(ws, answer);
  ws.serializeAttachment({ ...att, deltas: true, sent: g.config_version } satisfies SocketAttachment);
}

/**
 * Pushes the current version to every connected agent: a delta from what its socket was last sent
 * (one delta built per distinct base, usually one for all), or the whole document to older agents.
 */
export function broadcastConfig(gw: GatewayContext): void {
  const g = gw.state.gateway();
  if (!g) return;
  let whole: string | undefined;
  const byBase = new Map<number, string>();
  for (const ws of gw.ctx.getWebSockets()) {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    if (!att?.deltas) {
      whole ??= JSON.stringify(wholeAnswer(gw, g));
      send(ws, whole);
      continue;
    }
    const base = att.sent ?? 0;
    if (base === g.config_version) continue;
    let message = byBase.get(base);
    if (message === undefined) {
      message = JSON.stringify(configAnswer(gw, g, base));
      byBase.set(base, message);
    }
    send(ws, message);
    ws.serializeAttachment({ ...att, sent: g.config_version } satisfies SocketAttachment);
  }
}

/** Disconnects agents of replicas that are going away. */
export function closeRetiredSockets(gw: GatewayContext): void {
  for (const r of gw.state.replicas()) {
    if (r.status !== "terminating" && r.status !== "terminated") continue;
    for (const ws of gw.ctx.getWebSockets(r.id))
      ws.close(CLOSE_CODES.REPLICA_GONE, "this gateway replica is no longer active");
  }
}
