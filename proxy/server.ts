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
import { DEFAULT_HOLD_LIMITS, type HoldLimits, HoldQueue } from "./hold.ts";
import { serveEntrypoint } from "./openai-entrypoint.ts";
import { replyJson, replyRaw, replyText } from "./replies.ts";
import { buildRoutingTable, EMPTY_TABLE, normalizeHost, type RoutingTable, type ServiceRoute } from "./routes.ts";
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
  /** Bounds of the queue of requests held for services scaled to zero. */
  hold: HoldLimits;
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
  hold: DEFAULT_HOLD_LIMITS,
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
  /** A service scaled to zero: wait for a replica (`hold.ts`). */
  | { hold: ServiceRoute; cors: boolean }
  | { status: number; message: string; json: boolean; cors?: boolean; challenge?: boolean };

export class ProxyServer {
  readonly #settings: ServerSettings;
  readonly #server: Server;
  readonly #ctx: ProxyContext;
  readonly #stats = new StatsRegistry();
  readonly #log: (line: string) => void;
  readonly #holds: HoldQueue;
  #table: RoutingTable = EMPTY_TABLE;
  #closed: Promise<void> | null = null;

  /** `onHold(service)`: a request waits for a service scaled to zero (rate-limited per service). */
  constructor(settings: ServerSettings, log: (line: string) => void, onHold: (service: string) => void = () => {}) {
    this.#settings = settings;
    this.#log = log;
    this.#holds = new HoldQueue(settings.hold, onHold);
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
    this.#holds.release(table);
  }

  /** Requests waiting for a service scaled to zero (diagnostics, tests). */
  held(service?: string): number {
    return this.#holds.size(service);
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
    this.#holds.expireAll();
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
    if (cors && isPreflight(req)) return { special: "preflight", table, path: target.path };
    const denied = authDenial(route, table, req.headers.authorization);
    if (denied) return { ...denied, json: true, cors };
    const empty = route.balancer.replicas.length === 0;
    if (empty && route.holdTimeoutMs === null) {
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
    if (empty) return { hold: route, cors };
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
    if ("hold" in routed) {
      this.#hold(routed.hold, res, routed.cors, expectsContinue || head.chunked || head.contentLength > 0, () =>
        this.#handle(req, res, expectsContinue),
      );
      return;
    }
    if ("special" in routed) {
      if (routed.special === "entrypoint") {
        const options = {
          expectsContinue,
          retryAfterSeconds: this.#settings.retryAfterSeconds,
          hold: (route: ServiceRoute, unread: boolean, resume: (table: RoutingTable) => void) =>
            this.#hold(route, res, true, unread, resume),
        };
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

  /**
   * Parks a request for a service scaled to zero until a document gives it a replica (then
   * `resume` routes it again, under the new table), or answers 503 with Retry-After when its hold
   * timeout passes or the queue is full. The body is left unread meanwhile (`unread`: then the
   * connection closes after a 503, since the rest of the body cannot be told from a next request).
   */
  #hold(
    route: ServiceRoute,
    res: ServerResponse,
    cors: boolean,
    unread: boolean,
    resume: (table: RoutingTable) => void,
  ): void {
    const refuse = (message: string) =>
      replyJson(res, 503, message, {
        close: unread || this.#ctx.closing,
        retryAfterSeconds: this.#settings.retryAfterSeconds,
        cors,
      });
    // Counted as running, so a closing server answers held requests before it stops.
    this.#ctx.begin();
    const outcome = this.#holds.hold(route, res, (end) => {
      this.#ctx.end();
      if (end.kind === "resume") resume(end.table);
      else if (end.kind === "expired") {
        refuse(`service ${route.name} has no replicas (none registered within ${route.holdTimeoutMs! / 1000} s)`);
      }
    });
    if (outcome === "full") {
      this.#ctx.end();
      this.#holds.signal(route.name);
      refuse(`service ${route.name} has no replicas and too many requests wait for one`);
    }
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
    else if ("hold" in routed) {
      // Upgrades are not held (a raw socket has no response to park); the replica is still asked for.
      this.#holds.signal(routed.hold.name);
      replyRaw(socket, 503, `service ${routed.hold.name} has no replicas`);
    } else replyRaw(socket, routed.status, routed.message);
  };
}
