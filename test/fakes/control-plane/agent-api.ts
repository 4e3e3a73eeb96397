/**
 * @module
 * A stand-in for the control plane's agent API for tests: `POST /api/v1/agent/register|heartbeat|
 * token|ack`, `GET /api/v1/agent/config` (ETag `"<version>"`, 304 on `If-None-Match`) and the
 * WebSocket `GET /api/v1/agent/connect` speaking `schema/agent-protocol.ts` (the document on connect
 * and on every change, `pong` to `ping`). With `deltas: true`, an agent that connects with `?deltas=1` gets a new version
 * as a delta from the last one sent to it (`schema/config-delta.ts`), and a `resync` is answered
 * with a delta from the version it names, or the whole document when that version is unknown; the
 * pull with `?since=N` answers a `ConfigAnswer` likewise. Agents that do not ask get whole documents,
 * and so does every agent without `deltas: true` (a control plane that predates deltas).
 * It validates bodies and agent messages with the shared
 * schemas, enforces the one-time bootstrap secret and bearer tokens, records everything, and
 * injects faults (5xx on register, revoked tokens, refused upgrades, dropped sockets, silence).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import * as v from "valibot";
import { type WebSocket, WebSocketServer } from "ws";
import { AgentHeartbeatRequest, AgentRegisterRequest, type AgentTokenResponse } from "../../../schema/agent.ts";
import { AgentMessage } from "../../../schema/agent-protocol.ts";
import type { ConfigDocument } from "../../../schema/config-document.ts";
import { diffDocuments } from "../config-documents.ts";

export interface RecordedRequest {
  method: string;
  /** The path, without the query. */
  route: string;
  /** The query (`?since=3`), or "". */
  query: string;
  authorization: string | null;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The answer's status. */
  status: number;
  at: number;
}

/** One attempt to open the WebSocket, and what it was answered. */
export interface RecordedUpgrade {
  authorization: string | null;
  /** 101 when upgraded. */
  status: number;
  at: number;
}

export interface RecordedSocket {
  id: number;
  authorization: string | null;
  openedAt: number;
  closedAt: number | null;
  /** Close code as the server saw it (1006 when the connection just vanished). */
  closeCode: number | null;
  /** The agent asked for deltas (`?deltas=1`) and this fake sends them (`deltas: true`). */
  deltas: boolean;
}

export interface ReceivedMessage {
  socket: number;
  at: number;
  message: unknown;
  /** Whether it satisfies `AgentMessage`. */
  valid: boolean;
}

export interface FakeControlPlaneOptions {
  bootstrapSecret: string;
  /** Lifetime of issued tokens, in seconds. */
  tokenTtlSeconds?: number;
  /** Serve the WebSocket (default); false answers the upgrade 404, like a control plane without it. */
  websocket?: boolean;
  /** Send deltas to agents that ask for them (default false: a control plane that predates deltas ignores the ask). */
  deltas?: boolean;
}

export interface FakeControlPlane {
  url: string;
  requests: RecordedRequest[];
  upgrades: RecordedUpgrade[];
  sockets: RecordedSocket[];
  messages: ReceivedMessage[];
  /** Tokens issued so far, oldest first. */
  issued: string[];
  /** The current document, served by `GET …/config` and pushed to open sockets; anything, to test rejection. */
  setConfig(document: unknown): void;
  /** Sends `message` as is to every open socket (e.g. an old version), without changing the current one. */
  push(message: unknown): void;
  /** The next version is lost on the way to every open socket: the next delta is computed from it, a gap for the agent. */
  skipNextPush(): void;
  /** The next `count` registrations answer `status` (default 503) before being looked at. */
  failRegistrations(count: number, status?: number): void;
  /** The next `count` upgrades answer `status` (default 503). */
  refuseUpgrades(count: number, status?: number): void;
  /** Upgrades bearing one of `tokens` are answered 401 (the tokens stay good elsewhere, e.g. to refresh). */
  refuseUpgradesWith(tokens: string[]): void;
  /** Turns the WebSocket route on or off (off: 404, like a control plane without it). */
  setWebSocket(enabled: boolean): void;
  /** Whether pings are answered (default true); false plays a peer that went silent. */
  setPongs(enabled: boolean): void;
  /** Closes every open socket with `code` (and `reason`), or drops their TCP connections when no code. */
  dropSockets(code?: number, reason?: string): void;
  /** Every token issued so far is refused from now on (401), like a key rotation or a revoked host. */
  revokeTokens(): void;
  /** Lets the bootstrap secret be used once more (as if the control plane had issued a new one). */
  rearmSecret(): void;
  routes(route: string): RecordedRequest[];
  /** Valid agent messages of `type` received so far. */
  received<T extends AgentMessage["type"]>(
    type: T,
  ): Array<Extract<AgentMessage, { type: T }> & { receivedAt: number; socket: number }>;
  openSockets(): number;
  close(): Promise<void>;
}

const CONNECT = "/api/v1/agent/connect";

export async function startFakeControlPlane(options: FakeControlPlaneOptions): Promise<FakeControlPlane> {
  const ttl = options.tokenTtlSeconds ?? 900;
  const requests: RecordedRequest[] = [];
  const upgrades: RecordedUpgrade[] = [];
  const sockets: RecordedSocket[] = [];
  const messages: ReceivedMessage[] = [];
  const issued: string[] = [];
  const valid = new Map<string, { expiresAt: number; gatewayId: string; replicaNum: number }>();
  const open = new Map<number, WebSocket>();
  let secretUsed = false;
  let failures = { count: 0, status: 503 };
  let upgradeRefusals = { count: 0, status: 503 };
  const refusedOnUpgrade = new Set<string>();
  let websocketEnabled = options.websocket ?? true;
  let pongs = true;
  let config: unknown = null;
  /** Every valid-looking document set, by version: what a delta or a resync is computed from. */
  const history = new Map<number, ConfigDocument>();
  /** The version last sent to each socket that takes deltas. */
  const sent = new Map<number, number>();
  let skipPush = false;
  const versionNumber = (document: unknown): number | null => {
    const version = (document as { version?: unknown } | null)?.version;
    return typeof version === "number" ? version : null;
  };
  /** What to send a socket (or a pull) holding `version`: a delta from it when known, else the whole document. */
  const answerFor = (
    version: number | null,
  ): { type: "config"; document: unknown } | { type: "config_delta"; delta: unknown } => {
    const current = versionNumber(config);
    const base = version === null ? undefined : history.get(version);
    if (base && current !== null && history.get(current) === config && version! < current) {
      return { type: "config_delta", delta: diffDocuments(base, config as ConfigDocument) };
    }
    return { type: "config", document: config };
  };
  const remember = (document: unknown) => {
    const version = versionNumber(document);
    const services = (document as { services?: unknown } | null)?.services;
    if (version !== null && Array.isArray(services)) history.set(version, document as ConfigDocument);
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(data);
  };
  const refuse = (res: ServerResponse, code: string, message: string) => send(res, 401, { error: { code, message } });
  // Heartbeat and ack answer 204, as the control plane's OpenAPI document says.
  const noContent = (res: ServerResponse) => {
    res.writeHead(204);
    res.end();
  };

  const issue = (gatewayId: string, replicaNum: number): AgentTokenResponse => {
    // Opaque to the agent; a JWT in the real control plane.
    const token = `eyJ.${randomBytes(12).toString("base64url")}.sig`;
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    valid.set(token, { expiresAt, gatewayId, replicaNum });
    issued.push(token);
    return { token, expires_at: expiresAt, gateway_id: gatewayId, replica_num: replicaNum };
  };

  const bearer = (req: IncomingMessage) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const entry = token === undefined ? undefined : valid.get(token);
    return entry && entry.expiresAt > Date.now() / 1000 ? entry : undefined;
  };
  const versionOf = (document: unknown) => (document as { version?: unknown } | null)?.version;

  const server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      return send(res, 400, { error: { code: "invalid_json", message: "invalid JSON" } });
    }
    const url = new URL(req.url ?? "/", "http://x");
    const route = url.pathname;
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      route,
      query: url.search,
      authorization: req.headers.authorization ?? null,
      headers: req.headers,
      body,
      status: 0,
      at: Date.now(),
    };
    requests.push(record);
    res.on("finish", () => {
      record.status = res.statusCode;
    });

    if (url.pathname === "/api/v1/agent/config") {
      if (req.method !== "GET") return send(res, 405, { error: { code: "method_not_allowed", message: req.method } });
      if (!bearer(req)) return refuse(res, "invalid_token", "agent token refused");
      if (config === null) return send(res, 404, { error: { code: "not_found", message: "no config yet" } });
      const etag = `"${versionOf(config)}"`;
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { etag });
        return res.end();
      }
      const since = url.searchParams.get("since");
      if (since === null || !options.deltas) return send(res, 200, config, { etag });
      return send(res, 200, answerFor(Number(since)), { etag });
    }
    if (req.method !== "POST") return send(res, 405, { error: { code: "method_not_allowed", message: req.method } });

    if (route === "/api/v1/agent/register") {
      if (failures.count > 0) {
        failures.count--;
        return send(res, failures.status, { error: { code: "unavailable", message: "injected failure" } });
      }
      const parsed = v.safeParse(AgentRegisterRequest, body);
      if (!parsed.success)
        return send(res, 400, { error: { code: "invalid_request", message: parsed.issues[0].message } });
      if (parsed.output.bootstrap_secret !== options.bootstrapSecret || secretUsed) {
        return refuse(res, "invalid_bootstrap_secret", "bootstrap secret is wrong or already used");
      }
      secretUsed = true;
      return send(res, 200, issue(parsed.output.gateway_id, parsed.output.replica_num));
    }
    if (route === "/api/v1/agent/heartbeat") {
      if (!bearer(req)) return refuse(res, "invalid_token", "agent token refused");
      const parsed = v.safeParse(AgentHeartbeatRequest, body);
      if (!parsed.success)
        return send(res, 400, { error: { code: "invalid_request", message: parsed.issues[0].message } });
      return noContent(res);
    }
    if (route === "/api/v1/agent/token") {
      const entry = bearer(req);
      if (!entry) return refuse(res, "invalid_token", "agent token refused");
      return send(res, 200, issue(entry.gatewayId, entry.replicaNum));
    }
    if (route === "/api/v1/agent/ack") {
      if (!bearer(req)) return refuse(res, "invalid_token", "agent token refused");
      const ack = body as { version?: unknown; error?: unknown } | null;
      const ok =
        typeof ack?.version === "number" &&
        (ack.error === null || typeof ack.error === "string") &&
        Object.keys(ack).length === 2;
      if (!ok) return send(res, 400, { error: { code: "invalid_request", message: "expected {version, error}" } });
      return noContent(res);
    }
    return send(res, 404, { error: { code: "not_found", message: route } });
  });

  const wss = new WebSocketServer({ noServer: true });
  let nextSocketId = 1;
  const answerUpgrade = (socket: Duplex, status: number, message: string) => {
    // An upgrade's socket has no error listener of node's: a client that resets it while the answer
    // is on its way (an agent giving up) must not throw in the test's process.
    socket.on("error", () => {});
    const body = JSON.stringify({ error: { code: String(status), message } });
    socket.end(
      `HTTP/1.1 ${status} ${message}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  };
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const authorization = req.headers.authorization ?? null;
    const answer = (status: number, message: string) => {
      upgrades.push({ authorization, status, at: Date.now() });
      answerUpgrade(socket, status, message);
    };
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== CONNECT || !websocketEnabled) return answer(404, "Not Found");
    const deltas = url.searchParams.get("deltas") === "1" && options.deltas === true;
    if (upgradeRefusals.count > 0) {
      upgradeRefusals.count--;
      return answer(upgradeRefusals.status, "Injected");
    }
    if (!bearer(req) || refusedOnUpgrade.has(/^Bearer (.+)$/.exec(authorization ?? "")?.[1] ?? "")) {
      return answer(401, "Unauthorized");
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgrades.push({ authorization, status: 101, at: Date.now() });
      const record: RecordedSocket = {
        id: nextSocketId++,
        authorization,
        openedAt: Date.now(),
        closedAt: null,
        closeCode: null,
        deltas,
      };
      sockets.push(record);
      open.set(record.id, ws);
      ws.on("message", (data, isBinary) => {
        let message: unknown = null;
        try {
          message = isBinary ? null : JSON.parse(String(data));
        } catch {
          // Recorded as invalid below.
        }
        messages.push({
          socket: record.id,
          at: Date.now(),
          message,
          valid: v.safeParse(AgentMessage, message).success,
        });
        if ((message as { type?: unknown } | null)?.type === "ping" && pongs) ws.send(JSON.stringify({ type: "pong" }));
        if ((message as { type?: unknown } | null)?.type === "resync" && deltas && config !== null) {
          const version = (message as { version?: unknown }).version;
          ws.send(JSON.stringify(answerFor(typeof version === "number" ? version : null)));
          sent.set(record.id, versionNumber(config)!);
        }
      });
      ws.on("close", (code) => {
        record.closedAt = Date.now();
        record.closeCode = code;
        open.delete(record.id);
        sent.delete(record.id);
      });
      // A whole document on connect, deltas or not (Envoy's snapshot on connect).
      if (config !== null) {
        ws.send(JSON.stringify({ type: "config", document: config }));
        if (deltas) sent.set(record.id, versionNumber(config)!);
      }
    });
  });

  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    upgrades,
    sockets,
    messages,
    issued,
    setConfig(document) {
      config = document;
      remember(document);
      if (skipPush) {
        // Lost on the way: the next delta is computed from this version, which the agent never got.
        skipPush = false;
        const version = versionNumber(document);
        for (const id of open.keys()) if (sent.has(id) && version !== null) sent.set(id, version);
        return;
      }
      for (const [id, ws] of open) {
        const record = sockets.find((s) => s.id === id)!;
        if (!record.deltas) {
          ws.send(JSON.stringify({ type: "config", document }));
          continue;
        }
        ws.send(JSON.stringify(answerFor(sent.get(id) ?? null)));
        const version = versionNumber(document);
        if (version !== null) sent.set(id, version);
      }
    },
    skipNextPush() {
      skipPush = true;
    },
    push(message) {
      for (const ws of open.values()) ws.send(JSON.stringify(message));
    },
    failRegistrations(count, status = 503) {
      failures = { count, status };
    },
    refuseUpgrades(count, status = 503) {
      upgradeRefusals = { count, status };
    },
    refuseUpgradesWith(tokens) {
      for (const token of tokens) refusedOnUpgrade.add(token);
    },
    setWebSocket(enabled) {
      websocketEnabled = enabled;
    },
    setPongs(enabled) {
      pongs = enabled;
    },
    dropSockets(code, reason) {
      for (const ws of open.values()) {
        if (code === undefined) ws.terminate();
        else ws.close(code, reason);
      }
    },
    revokeTokens() {
      valid.clear();
    },
    rearmSecret() {
      secretUsed = false;
    },
    routes: (route) => requests.filter((r) => r.route === `/api/v1/agent/${route}`),
    received: (type) =>
      messages
        .filter((m) => m.valid && (m.message as { type: string }).type === type)
        .map((m) => ({
          ...(m.message as Extract<AgentMessage, { type: typeof type }>),
          receivedAt: m.at,
          socket: m.socket,
        })),
    openSockets: () => open.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of open.values()) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
