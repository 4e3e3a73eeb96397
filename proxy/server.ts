/**
 * @module
 * The proxy in one process: a `node:http` server that routes each request by its Host to a service,
 * forwards it (or tunnels an upgrade), and swaps routing tables atomically when a document arrives.
 * Requests the proxy answers itself (unknown host, entrypoint, no replicas, body too large, malformed
 * framing) never reach a replica and are not counted in the stats.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { ConfigDocument } from "../schema/config-document.ts";
import { authDenial } from "./auth.ts";
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from "./balancer.ts";
import { ProxyContext } from "./context.ts";
import { isPreflight, replyPreflight } from "./cors.ts";
import { forward } from "./forward.ts";
import { clientAddress, type RequestHead, readRequestHead } from "./headers.ts";
import { serveEntrypoint } from "./openai-entrypoint.ts";
import { replyJson, replyRaw, replyText } from "./replies.ts";
import {
  buildRoutingTable,
  EMPTY_TABLE,
  normalizeHost,
  type RoutingTable,
  type ServiceRoute,
  sglangPathAllowed,
} from "./routes.ts";
import { type RawServiceStats, StatsRegistry } from "./stats.ts";
import { DEFAULT_POOL_SETTINGS, type PoolSettings, UpstreamPools } from "./upstream-pools.ts";
import { tunnel } from "./websocket.ts";

/** Everything a process needs to serve; plain data, so the parent can hand it to workers. */
export interface ServerSettings {
  /** Largest request head in bytes (Node answers 431 beyond it). */
  maxHeaderSize: number;
  /** Most header fields in a request (431 beyond it). */
  maxHeadersCount: number;
  /** A client must send its whole request head within this (Node answers 408). */
  headersTimeoutMs: number;
  /** A client must send its whole request, body included, within this. */
  requestTimeoutMs: number;
  /** Idle client keep-alive connections close after this. */
  keepAliveTimeoutMs: number;
  /** On close, how long requests in flight may run before connections are cut. */
  drainTimeoutMs: number;
  /** Other replicas tried for a request that never reached one. */
  maxRetries: number;
  /** Seconds in the `Retry-After` of a 503 for a service without replicas. */
  retryAfterSeconds: number;
  health: HealthPolicy;
  pools: PoolSettings;
}

export const DEFAULT_SERVER_SETTINGS: ServerSettings = {
  maxHeaderSize: 16 * 1024,
  maxHeadersCount: 100,
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 75_000,
  drainTimeoutMs: 10_000,
  maxRetries: 3,
  retryAfterSeconds: 5,
  health: DEFAULT_HEALTH_POLICY,
  pools: DEFAULT_POOL_SETTINGS,
};

export type ListenTarget = { host: string; port: number } | { handle: object };

interface Target {
  host: string | undefined;
  path: string;
}

/** Origin-form targets pass as they are; absolute-form ones name the host themselves (RFC 9112 §3.2.2). */
function requestTarget(url: string, head: RequestHead): Target | null {
  if (url.startsWith("/")) return { host: head.host, path: url };
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const parsed = new URL(url);
    return { host: parsed.host, path: `${parsed.pathname}${parsed.search}` };
  } catch {
    return null;
  }
}

type Routed =
  | { route: ServiceRoute; path: string }
  /** The OpenAI-compatible entrypoint (`openai-entrypoint.ts`), or a CORS preflight to a model service. */
  | { special: "entrypoint" | "preflight"; table: RoutingTable; path: string }
  | { status: number; message: string; json: boolean; cors?: boolean; challenge?: boolean };

export class ProxyServer {
  readonly #settings: ServerSettings;
  readonly #server: Server;
  readonly #ctx: ProxyContext;
  readonly #stats = new StatsRegistry();
  readonly #log: (line: string) => void;
  #table: RoutingTable = EMPTY_TABLE;
  #closed: Promise<void> | null = null;

  constructor(settings: ServerSettings, log: (line: string) => void) {
    this.#settings = settings;
    this.#log = log;
    const pools = new UpstreamPools(settings.pools);
    this.#ctx = new ProxyContext(
      pools,
      { maxRetries: settings.maxRetries, connectTimeoutMs: settings.pools.connectTimeoutMs, proto: "http" },
      log,
    );
    this.#server = createServer(
      {
        maxHeaderSize: settings.maxHeaderSize,
        headersTimeout: settings.headersTimeoutMs,
        requestTimeout: settings.requestTimeoutMs,
        // Node enforces the two timeouts above only when it sweeps connections (every 30 s by default).
        connectionsCheckingInterval: Math.max(100, Math.min(5_000, settings.headersTimeoutMs / 2)),
        noDelay: true,
      },
      this.#onRequest,
    );
    this.#server.keepAliveTimeout = settings.keepAliveTimeoutMs;
    // One more than allowed, so an oversized request is seen (Node silently drops fields past the limit).
    this.#server.maxHeadersCount = settings.maxHeadersCount + 1;
    this.#server.on("upgrade", this.#onUpgrade);
    // Answer `Expect: 100-continue` only once the request is routable: a refused body is never sent.
    this.#server.on("checkContinue", this.#onCheckContinue);
  }

  /** Version of the document in force (0 before the first). */
  get version(): number {
    return this.#table.version;
  }

  /** Swaps in a validated document; requests already running finish on the previous table. */
  apply(doc: ConfigDocument): void {
    const table = buildRoutingTable(doc, this.#table, {
      stats: this.#stats,
      health: this.#settings.health,
      log: this.#log,
    });
    this.#stats.retain(new Set(table.services));
    this.#ctx.pools.retain(table.origins);
    this.#table = table;
  }

  listen(target: ListenTarget): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = this.#server;
      const onError = (err: Error) => reject(err);
      server.once("error", onError);
      const onListening = () => {
        server.off("error", onError);
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : 0);
      };
      if ("handle" in target) server.listen(target.handle, onListening);
      else server.listen({ host: target.host, port: target.port }, onListening);
    });
  }

  /** The listening socket's handle, for handing to sibling processes. */
  get handle(): object | undefined {
    return (this.#server as Server & { _handle?: object })._handle;
  }

  stats(): RawServiceStats[] {
    return this.#stats.snapshot(Date.now());
  }

  /** Stops accepting, lets running exchanges finish for up to `drainTimeoutMs`, then cuts the rest. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    const drained = this.#ctx.startClosing();
    if (server.listening) server.close();
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#settings.drainTimeoutMs);
    });
    await Promise.race([drained, bound]);
    clearTimeout(timer);
    server.closeAllConnections();
    for (const t of [...this.#ctx.tunnels]) t.destroy();
    await this.#ctx.pools.closeAll(true);
  }

  #route(req: IncomingMessage, head: RequestHead): Routed {
    if (head.framingError) return { status: 400, message: `bad request: ${head.framingError}`, json: false };
    if (req.rawHeaders.length > 2 * this.#settings.maxHeadersCount) {
      return { status: 431, message: "too many header fields", json: false };
    }
    const target = requestTarget(req.url ?? "", head);
    if (!target) return { status: 400, message: "bad request target", json: false };
    const host = normalizeHost(target.host ?? "");
    const table = this.#table;
    const route = table.byHost.get(host);
    if (!route) {
      if (host !== "" && host === table.entrypointHost) return { special: "entrypoint", table, path: target.path };
      return { status: 404, message: `no service for host ${host.slice(0, 253) || "(none)"}`, json: false };
    }
    const cors = route.model !== null;
    if (route.sglangPathsOnly && !sglangPathAllowed(target.path)) {
      return { status: 403, message: `path not served by service ${route.name}'s router`, json: true, cors };
    }
    if (cors && isPreflight(req)) return { special: "preflight", table, path: target.path };
    const denied = authDenial(route, table, req.headers.authorization);
    if (denied) return { ...denied, json: true, cors };
    if (route.balancer.replicas.length === 0) {
      return { status: 503, message: `service ${route.name} has no replicas`, json: true, cors };
    }
    if (route.maxBodySize > 0 && head.contentLength > route.maxBodySize) {
      return {
        status: 413,
        message: `request body larger than client_max_body_size (${route.maxBodySize} bytes)`,
        json: true,
        cors,
      };
    }
    return { route, path: target.path };
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, false);
  };

  readonly #onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, true);
  };

  #handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const startedAt = performance.now();
    const head = readRequestHead(req.rawHeaders, clientAddress(req.socket.remoteAddress), "http");
    const routed = this.#route(req, head);
    if ("route" in routed) {
      if (expectsContinue) res.writeContinue();
      forward(this.#ctx, req, res, routed.route, head, routed.path, startedAt);
      return;
    }
    if ("special" in routed) {
      if (routed.special === "entrypoint") {
        const options = { expectsContinue, retryAfterSeconds: this.#settings.retryAfterSeconds };
        serveEntrypoint(this.#ctx, routed.table, req, res, head, routed.path, startedAt, options);
      } else {
        replyPreflight(req, res, expectsContinue || head.chunked || head.contentLength > 0 || this.#ctx.closing);
      }
      return;
    }
    const options = {
      // A refused body may still be on its way (or, after no 100 Continue, may never come): close
      // rather than read it or guess where the next request starts.
      close:
        expectsContinue || routed.status === 400 || routed.status === 413 || routed.status === 431 || this.#ctx.closing,
      retryAfterSeconds: routed.status === 503 ? this.#settings.retryAfterSeconds : undefined,
      cors: routed.cors,
      challenge: routed.challenge,
    };
    if (routed.json) replyJson(res, routed.status, routed.message, options);
    else replyText(res, routed.status, routed.message, options);
  }

  /** Every replica of the document in force with its in-flight count and health (diagnostics, tests). */
  replicas(): { service: string; id: string; url: string; inFlight: number; ejected: boolean }[] {
    return [...this.#table.byHost.values()].flatMap((route) =>
      route.balancer.replicas.map((r) => ({
        service: r.service,
        id: r.id,
        url: r.url,
        inFlight: r.inFlight,
        ejected: r.ejectedAt !== 0,
      })),
    );
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, early: Buffer): void => {
    const startedAt = performance.now();
    socket.on("error", () => socket.destroy());
    const head = readRequestHead(req.rawHeaders, clientAddress(req.socket.remoteAddress), "http", true);
    const routed = this.#route(req, head);
    if ("route" in routed) tunnel(this.#ctx, req, socket, early, routed.route, head, routed.path, startedAt);
    else if ("special" in routed) replyRaw(socket, 404, "no upgrades here");
    else replyRaw(socket, routed.status, routed.message);
  };
}
