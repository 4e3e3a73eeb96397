/**
 * @module
 * The agent's long-lived WebSocket to its GatewayObject (`GET /api/v1/agent/connect`, protocol in
 * `schema/agent-protocol.ts`). The server pushes the config document on connect and on every new
 * version; each is applied and answered with an ACK or NACK. The agent says it takes deltas
 * (`?deltas=1`, `schema/config-delta.ts`): then a new version may come as what changed since the
 * one applied, ACKed or NACKed alike; one on top of another version (a gap: a missed delta) is not
 * applied, and the agent asks to resync from the version it holds (`resync`). The agent reports stats every 5 s and
 * health every 10 s, pings every 20 s and gives the connection up after 2 unanswered pings. It
 * reconnects with jittered exponential back-off, and a refused token (close 4001, or HTTP 401 on the
 * upgrade) is refreshed before reconnecting. While this link is down the HTTP fallbacks take over.
 */

import { Agent as UndiciAgent, WebSocket } from "undici";
import type { MeshPort } from "../proxy/index.ts";
import {
  type AgentMessage,
  type CertificateState,
  CLOSE_CODES,
  MAX_CERTIFICATE_HOSTS,
  MAX_REPORT_ENTRIES,
  type RouterReport,
  type ServiceStats,
} from "../schema/agent-protocol.ts";
import { DIGEST_INTERVAL_MS } from "../schema/mesh.ts";
import { type BackoffPolicy, backoffDelay, sleep } from "./backoff.ts";
import type { ApplyOutcome, ConfigApplier } from "./config-applier.ts";
import type { Credentials } from "./credentials.ts";
import type { LinkState } from "./link-state.ts";
import type { Logger } from "./log.ts";
import type { ScaleSignals } from "./scale-signal.ts";
import { dialWebSocket, webSocketUrl } from "./websocket-dial.ts";

export const CONNECT_ROUTE = "/api/v1/agent/connect";
/** The upgrade's query: this agent takes deltas (a control plane that predates them ignores it). */
export const CONNECT_QUERY = "?deltas=1";

export interface SocketTiming {
  statsIntervalMs: number;
  healthIntervalMs: number;
  pingIntervalMs: number;
  /** Unanswered pings (counted at each ping tick) after which the connection is dead. */
  missedPongsLimit: number;
  /** Between connection attempts. */
  backoff: BackoffPolicy;
  /** A connection that lived this long resets the back-off to its first step. */
  stableAfterMs: number;
  /** From dialling to `open`; a control plane that accepts TCP but never answers must not hang us. */
  handshakeTimeoutMs: number;
  /** On shutdown, how long to wait for the server's close frame before dropping the connection. */
  closeTimeoutMs: number;
}

export const DEFAULT_SOCKET_TIMING: SocketTiming = {
  statsIntervalMs: 5_000,
  healthIntervalMs: 10_000,
  pingIntervalMs: 20_000,
  missedPongsLimit: 2,
  backoff: { initialMs: 500, maxMs: 30_000 },
  stableAfterMs: 30_000,
  handshakeTimeoutMs: 15_000,
  closeTimeoutMs: 2_000,
};

export interface HostHealth {
  status: "healthy" | "degraded";
  message: string | null;
  /** Modes of the services that ask for the sglang router (omitted: none to report). */
  routers?: RouterReport[];
}

export interface ConfigSocketOptions {
  controlPlaneUrl: string;
  credentials: Credentials;
  applier: ConfigApplier;
  link: LinkState;
  stats: () => Promise<ServiceStats[]>;
  health: () => HostHealth;
  /** Per-host certificate state, sent on connect and on every change; null without HTTPS. */
  certificates?: {
    states(): CertificateState[];
    onChange(listener: (states: CertificateState[]) => void): () => void;
  } | null;
  /** Subscribes to changes of what `health` returns (sent at once, not at the next period); returns the unsubscribe. */
  onHealthChange?: (listener: () => void) => () => void;
  /** Agent software version, reported in health messages. */
  version: string;
  log: Logger;
  timing: SocketTiming;
  /** Scale-from-zero signals go over this socket while it is open. */
  signals?: ScaleSignals;
  /**
   * The proxy's share of the gateway's mesh (`proxy/mesh/mesh.ts`): its digest is sent every
   * `DIGEST_INTERVAL_MS` while the socket is open, peers' digests relayed by the object are applied.
   */
  mesh?: () => MeshPort | null;
}

/** How one connection ended. */
interface SessionEnd {
  openedAt: number | null;
  closedAt: number;
  code: number;
  reason: string;
  /** Status of the upgrade answer: 101 once upgraded, the refusal's status otherwise, null if none came. */
  upgradeStatus: number | null;
  /** Why the agent itself gave the connection up (dead peer, handshake timeout), if it did. */
  abandoned: string | null;
  /** Why the handshake request failed, when it did not get an answer. */
  failure: string | null;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Keeps the WebSocket up until `signal` aborts. */
export async function runConfigSocket(options: ConfigSocketOptions, signal: AbortSignal): Promise<void> {
  const { credentials, log, timing } = options;
  const url = webSocketUrl(options.controlPlaneUrl, CONNECT_ROUTE + CONNECT_QUERY);
  // Its own pool, destroyed on the way out: nothing of the agent's sockets outlives stop().
  const dispatcher = new UndiciAgent();
  let attempt = 0;
  try {
    while (!signal.aborted) {
      const token = await credentials.ready(signal);
      if (!token) break;
      const end = await connectOnce(options, url, token.token, dispatcher, signal);
      if (signal.aborted) break;
      const lived = end.openedAt === null ? 0 : end.closedAt - end.openedAt;
      if (lived >= timing.stableAfterMs) attempt = 0;
      const delay = backoffDelay(timing.backoff, attempt++);
      const tokenRefused = end.code === CLOSE_CODES.TOKEN_REFUSED || end.upgradeStatus === 401;
      if (tokenRefused) {
        log.warn(
          `control plane refused the agent token on the WebSocket (${end.upgradeStatus === 401 ? "HTTP 401" : `close ${end.code}`}); getting a new one, reconnecting in ${delay} ms`,
        );
        credentials.refused(token.token);
      } else {
        log.warn(`${describeEnd(end)}; reconnecting in ${delay} ms`);
      }
      await sleep(delay, signal);
    }
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

function describeEnd(end: SessionEnd): string {
  if (end.openedAt !== null) {
    const seconds = Math.round((end.closedAt - end.openedAt) / 1000);
    const why = end.abandoned ?? `close ${end.code}${end.reason ? ` ${end.reason}` : ""}`;
    return `control-plane WebSocket lost after ${seconds} s (${why})`;
  }
  if (end.abandoned) return `cannot open the control-plane WebSocket (${end.abandoned})`;
  if (end.upgradeStatus !== null) return `control plane refused the WebSocket (HTTP ${end.upgradeStatus})`;
  return `cannot reach the control-plane WebSocket${end.failure ? ` (${end.failure})` : ""}`;
}

/** One connection, from dialling to its close. Never rejects. */
function connectOnce(
  options: ConfigSocketOptions,
  url: string,
  token: string,
  dispatcher: UndiciAgent,
  signal: AbortSignal,
): Promise<SessionEnd> {
  const { applier, link, log, timing } = options;
  const dialed = dialWebSocket(url, { authorization: `Bearer ${token}` }, dispatcher);
  const { ws } = dialed;
  let openedAt: number | null = null;
  let abandoned: string | null = null;
  let unansweredPings = 0;
  let statsInFlight = false;
  let statsFailing = false;
  const intervals: NodeJS.Timeout[] = [];
  let closeTimer: NodeJS.Timeout | undefined;
  let unsubscribe: () => void = () => undefined;

  const abandon = (why: string) => {
    abandoned ??= why;
    dialed.destroy();
  };
  const send = (message: AgentMessage): boolean => {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  };
  const sendHealth = () => {
    const { status, message, routers } = options.health();
    send({ type: "health", status, message, version: options.version, ...(routers ? { routers } : {}) });
  };
  const sendStats = async () => {
    // A proxy slow to count must not pile up calls.
    if (statsInFlight) return;
    statsInFlight = true;
    try {
      const services = await options.stats();
      if (statsFailing) log.info("proxy stats available again");
      statsFailing = false;
      send({ type: "stats", at: Date.now(), services: services.slice(0, MAX_REPORT_ENTRIES) });
    } catch (error) {
      if (!statsFailing) log.warn(`cannot read proxy stats: ${errorMessage(error)}`);
      statsFailing = true;
    } finally {
      statsInFlight = false;
    }
  };
  const ping = () => {
    if (unansweredPings >= timing.missedPongsLimit) {
      abandon(`${unansweredPings} pings unanswered`);
      return;
    }
    unansweredPings++;
    send({ type: "ping" });
  };
  const report = (outcome: ApplyOutcome) => {
    switch (outcome.kind) {
      case "applied":
      case "current":
        send({ type: "ack", version: outcome.version, rejected: outcome.rejected });
        break;
      case "rejected":
        send({ type: "nack", version: outcome.version, error: outcome.error });
        break;
      case "stale":
        break;
      case "gap":
        // The object answers with a delta from `applied`, or the whole document.
        send({ type: "resync", version: outcome.applied });
        break;
    }
  };
  const onMessage = async (data: unknown) => {
    if (typeof data !== "string") {
      log.warn("ignoring a binary WebSocket message from the control plane");
      return;
    }
    let message: { type?: unknown; document?: unknown; delta?: unknown };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      log.warn("ignoring a WebSocket message that is not JSON");
      return;
    }
    if (message?.type === "mesh") {
      // Validated whole by the mesh; a bad one is counted and dropped, never thrown.
      const applied = options.mesh?.()?.apply((message as { digest?: unknown }).digest);
      // Through a standalone proxy it is a call over its control socket: a proxy gone away meanwhile
      // loses this digest (the next one follows in half a second), it is not an error.
      if (applied instanceof Promise) applied.catch(() => {});
    } else if (message?.type === "pong") {
      unansweredPings = 0;
    } else if (message?.type === "config") {
      report(await applier.offer(message.document, "the WebSocket"));
    } else if (message?.type === "config_delta") {
      report(await applier.offerDelta(message.delta, "the WebSocket"));
    } else {
      // A newer control plane may say more than this agent knows; that is not an error.
      log.warn(`ignoring an unknown WebSocket message type ${JSON.stringify(message?.type ?? null)}`);
    }
  };

  return new Promise<SessionEnd>((resolve) => {
    const handshakeTimer = setTimeout(
      () => abandon(`no answer within ${timing.handshakeTimeoutMs} ms`),
      timing.handshakeTimeoutMs,
    );
    const onAbort = () => {
      // A polite close first, so the server sees the agent leave rather than vanish.
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "agent stopping");
      else dialed.destroy();
      closeTimer = setTimeout(() => dialed.destroy(), timing.closeTimeoutMs);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();

    ws.addEventListener("open", () => {
      clearTimeout(handshakeTimer);
      openedAt = Date.now();
      link.set(true);
      log.info(`connected to the control plane over ${url.startsWith("wss:") ? "wss" : "ws"}`);
      // Health at once: the control plane learns the replica's state without waiting a period.
      sendHealth();
      const certificates = options.certificates;
      let unsubscribeCertificates: () => void = () => undefined;
      if (certificates) {
        const report = (hosts: CertificateState[]) =>
          send({ type: "certificates", hosts: hosts.slice(0, MAX_CERTIFICATE_HOSTS) });
        report(certificates.states());
        unsubscribeCertificates = certificates.onChange(report);
      }
      const unsubscribeHealth = options.onHealthChange?.(sendHealth) ?? (() => undefined);
      unsubscribe = () => {
        unsubscribeCertificates();
        unsubscribeHealth();
      };
      options.signals?.attach(send);
      intervals.push(
        setInterval(() => void sendStats(), timing.statsIntervalMs),
        setInterval(sendHealth, timing.healthIntervalMs),
        setInterval(ping, timing.pingIntervalMs),
      );
      if (options.mesh) {
        const mesh = options.mesh;
        intervals.push(
          setInterval(() => {
            Promise.resolve(mesh()?.take())
              .then((digest) => {
                if (digest) send({ type: "mesh", digest });
              })
              .catch(() => {});
          }, DIGEST_INTERVAL_MS),
        );
      }
    });
    ws.addEventListener("message", (event) => {
      onMessage(event.data).catch((error: unknown) =>
        log.error(`WebSocket message handling failed: ${errorMessage(error)}`),
      );
    });
    // Always followed by `close`, which says everything there is to say.
    ws.addEventListener("error", () => undefined);
    ws.addEventListener("close", (event) => {
      clearTimeout(handshakeTimer);
      clearTimeout(closeTimer);
      for (const interval of intervals) clearInterval(interval);
      unsubscribe();
      options.signals?.detach();
      signal.removeEventListener("abort", onAbort);
      link.set(false);
      resolve({
        openedAt,
        closedAt: Date.now(),
        code: event.code,
        reason: event.reason,
        upgradeStatus: dialed.upgradeStatus,
        abandoned,
        failure: dialed.failure ? errorMessage(dialed.failure) : null,
      });
    });
  });
}
