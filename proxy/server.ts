/**
 * @module
 * The proxy in one process: a `node:http` server that routes each request by its Host to a service,
 * forwards it (or tunnels an upgrade), and swaps routing tables atomically when a document arrives.
 * Requests the proxy answers itself (unknown host, entrypoint, no replicas, body too large, malformed
 * framing, rate limited) never reach a replica and are not counted in the stats.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ConfigDocument } from "../schema/config-document.ts";
import { answerChallenge, CHALLENGE_PREFIX, type ChallengeTokens } from "./acme-challenge.ts";
import { admit } from "./auth.ts";
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from "./balancer.ts";
import { type BodyBufferSettings, DEFAULT_BODY_BUFFER, forwardWithBody } from "./body-buffer.ts";
import { onClientError, trackResponse } from "./client-error.ts";
import { ProxyContext } from "./context.ts";
import { isPreflight, replyPreflight } from "./cors.ts";
import { forward } from "./forward.ts";
import { clientAddress, type RequestHead, readRequestHead, useTargetAuthority } from "./headers.ts";
import { DEFAULT_HOLD_LIMITS, type HoldLimits, HoldQueue } from "./hold.ts";
import { routeByHost } from "./host-routing.ts";
import { serveEntrypoint } from "./openai-entrypoint.ts";
import { checkRateLimit, replyRateLimited, replyRateLimitedRaw, setHeaders } from "./rate-limit.ts";
import { LocalGate, type RateLimitGate } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { replyJson, replyRaw, replyText } from "./replies.ts";
import {
  buildRoutingTable,
  EMPTY_TABLE,
  normalizeHost,
  type RoutingTable,
  type ServiceRoute,
  sglangPathAllowed,
} from "./routes.ts";
import { LocalRoutingGate, type RoutingGate } from "./routing-gate.ts";
import { type RawServiceStats, StatsRegistry } from "./stats.ts";
import { CertificateSet, type TlsCertificate } from "./tls.ts";
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
  /** Most keys one rate-limit zone keeps (least recently used evicted beyond); nginx's 10 MB zone ≈ 160 000. */
  rateLimitKeys: number;
  health: HealthPolicy;
  pools: PoolSettings;
  /** Bounds of the queue of requests held for services scaled to zero. */
  hold: HoldLimits;
  /** Request bodies read before a replica is dialled, and the body read timeout (`body-buffer.ts`). */
  bodyBuffer: BodyBufferSettings;
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
  rateLimitKeys: 160_000,
  health: DEFAULT_HEALTH_POLICY,
  pools: DEFAULT_POOL_SETTINGS,
  hold: DEFAULT_HOLD_LIMITS,
  bodyBuffer: DEFAULT_BODY_BUFFER,
};

export type ListenTarget = { host: string; port: number } | { handle: object };

interface Target {
  host: string | undefined;
  path: string;
}

/**
 * Origin-form targets pass as they are; absolute-form ones name the host themselves (RFC 9112 §3.2.2):
 * that authority replaces the Host header, for routing and for what the replica receives alike.
 */
function requestTarget(url: string, head: RequestHead): Target | null {
  if (url.startsWith("/")) return { host: head.host, path: url };
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const parsed = new URL(url);
    useTargetAuthority(head, parsed.host);
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
  | { status: number; message: string; json: boolean; cors?: boolean; challenge?: boolean }
  /** Plain HTTP to a host we hold a certificate for. */
  | { redirect: string };

export class ProxyServer {
  readonly #settings: ServerSettings;
  readonly #server: Server;
  /** The HTTPS listener, made by the first `listenTls`. */
  #tlsServer: TlsServer | null = null;
  /** Port in the `Location` of HTTP → HTTPS redirects (omitted when 443); null: no HTTPS listener. */
  #httpsPort: number | null = null;
  readonly #certificates = new CertificateSet();
  #challenges: ChallengeTokens = {};
  readonly #ctx: ProxyContext;
  readonly #stats = new StatsRegistry();
  readonly #log: (line: string) => void;
  readonly #holds: HoldQueue;
  #table: RoutingTable = EMPTY_TABLE;
  #closed: Promise<void> | null = null;

  /**
   * `rateLimits`: where the host's rate-limit buckets are (a worker asks its parent); default: in this process.
   * `onHold(service)`: a request waits for a service scaled to zero (rate-limited per service).
   * `routing`: where the host's routing state is (a worker asks its parent); default: in this process.
   */
  constructor(
    settings: ServerSettings,
    log: (line: string) => void,
    rateLimits?: RateLimitGate,
    onHold: (service: string) => void = () => {},
    routing: RoutingGate = new LocalRoutingGate(),
  ) {
    this.#settings = settings;
    this.#log = log;
    this.#holds = new HoldQueue(settings.hold, onHold);
    const pools = new UpstreamPools(settings.pools);
    this.#ctx = new ProxyContext(
      pools,
      {
        maxRetries: settings.maxRetries,
        connectTimeoutMs: settings.pools.connectTimeoutMs,
        proto: "http",
        body: settings.bodyBuffer,
      },
      log,
      rateLimits ?? new LocalGate(new ZoneRegistry(settings.rateLimitKeys)),
      routing,
    );
    this.#server = createServer(this.#serverOptions(), this.#onRequest);
    this.#configure(this.#server);
  }

  #serverOptions() {
    const settings = this.#settings;
    return {
      maxHeaderSize: settings.maxHeaderSize,
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      // Node enforces the two timeouts above only when it sweeps connections (every 30 s by default).
      connectionsCheckingInterval: Math.max(100, Math.min(5_000, settings.headersTimeoutMs / 2)),
      noDelay: true,
    };
  }

  #configure(server: Server): void {
    server.keepAliveTimeout = this.#settings.keepAliveTimeoutMs;
    // One more than allowed, so an oversized request is seen (Node silently drops fields past the limit).
    server.maxHeadersCount = this.#settings.maxHeadersCount + 1;
    server.on("upgrade", this.#onUpgrade);
    // Answer `Expect: 100-continue` only once the request is routable: a refused body is never sent.
    server.on("checkContinue", this.#onCheckContinue);
    // Answers owed to earlier pipelined requests leave before the refusal of a malformed one.
    server.on("clientError", onClientError);
  }

  /** Replaces the certificates served by SNI (throws, keeping the old ones, if a pair is unusable). */
  setCertificates(certificates: readonly TlsCertificate[]): void {
    this.#certificates.replace(certificates);
  }

  /** Replaces the ACME HTTP-01 answers (already checked by the caller). */
  setChallenges(tokens: ChallengeTokens): void {
    this.#challenges = tokens;
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
    this.#ctx.rateLimits.retain(table.zones);
    this.#ctx.routing.retain(doc);
    this.#table = table;
    this.#holds.release(table);
  }

  /** Requests waiting for a service scaled to zero (diagnostics, tests). */
  held(service?: string): number {
    return this.#holds.size(service);
  }

  listen(target: ListenTarget): Promise<number> {
    return listenOn(this.#server, target);
  }

  /** Starts the HTTPS listener (SNI picks among `setCertificates`'s); resolves with its port. */
  async listenTls(target: ListenTarget): Promise<number> {
    if (this.#tlsServer) throw new Error("the HTTPS listener is already started");
    const server = createTlsServer(
      {
        ...this.#serverOptions(),
        SNICallback: this.#certificates.sni,
        minVersion: "TLSv1.2",
        ALPNProtocols: ["http/1.1"],
      },
      this.#onRequest,
    );
    // Handshakes that fail (no SNI, unknown host, scanners) are the client's problem, not an error of ours.
    server.on("tlsClientError", () => {});
    this.#configure(server);
    this.#tlsServer = server;
    const port = await listenOn(server, target);
    this.#httpsPort = port;
    return port;
  }

  /** The HTTPS listening socket's handle, for handing to sibling processes. */
  get tlsHandle(): object | undefined {
    return (this.#tlsServer as (TlsServer & { _handle?: object }) | null)?._handle;
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
    const servers = this.#tlsServer ? [this.#server, this.#tlsServer] : [this.#server];
    const drained = this.#ctx.startClosing();
    this.#holds.expireAll();
    for (const server of servers) {
      if (server.listening) server.close();
      server.closeIdleConnections();
    }
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#settings.drainTimeoutMs);
    });
    await Promise.race([drained, bound]);
    clearTimeout(timer);
    for (const server of servers) server.closeAllConnections();
    for (const t of [...this.#ctx.tunnels]) t.destroy();
    await this.#ctx.pools.closeAll(true);
  }

  #route(req: IncomingMessage, head: RequestHead, secure: boolean): Routed {
    if (head.framingError) return { status: 400, message: `bad request: ${head.framingError}`, json: false };
    if (req.rawHeaders.length > 2 * this.#settings.maxHeadersCount) {
      return { status: 431, message: "too many header fields", json: false };
    }
    const target = requestTarget(req.url ?? "", head);
    if (!target) return { status: 400, message: "bad request target", json: false };
    const host = normalizeHost(target.host ?? "");
    if (!secure && this.#httpsPort !== null && this.#certificates.has(host)) {
      const port = this.#httpsPort === 443 ? "" : `:${this.#httpsPort}`;
      return { redirect: `https://${host}${port}${target.path}` };
    }
    const table = this.#table;
    const routed = routeByHost(table, host, target.path);
    if (!routed) return { status: 404, message: `no service for host ${host.slice(0, 253) || "(none)"}`, json: false };
    // Reached on the bare address: plain HTTP to what has a certificate goes where its own host would send it.
    if (routed.host !== host && !secure && this.#httpsPort !== null && this.#certificates.has(routed.host)) {
      const port = this.#httpsPort === 443 ? "" : `:${this.#httpsPort}`;
      return { redirect: `https://${routed.host}${port}${routed.path}` };
    }
    if (routed.kind === "entrypoint") return { special: "entrypoint", table, path: routed.path };
    const { route, path } = routed;
    const cors = route.model !== null;
    if (route.sglangPathsOnly && !sglangPathAllowed(path)) {
      return { status: 403, message: `path not served by service ${route.name}'s router`, json: true, cors };
    }
    if (cors && isPreflight(req)) return { special: "preflight", table, path };
    const denied = admit(route, table, head, req.headers.authorization);
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
    return { route, path };
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, false);
  };

  readonly #onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, true);
  };

  #handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const startedAt = performance.now();
    trackResponse(req, res);
    const secure = (req.socket as TLSSocket).encrypted === true;
    // Challenges come first: the CA validates over plain HTTP whatever else the host does.
    if (!secure && req.url?.startsWith(CHALLENGE_PREFIX) && answerChallenge(req, res, this.#challenges)) return;
    const address = clientAddress(req.socket.remoteAddress);
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http");
    const routed = this.#route(req, head, secure);
    if ("redirect" in routed) {
      redirect(res, routed.redirect, expectsContinue || head.chunked || head.contentLength > 0 || this.#ctx.closing);
      return;
    }
    if ("route" in routed) {
      const { route, path } = routed;
      checkRateLimit(this.#ctx, {
        rules: route.rateLimits,
        path,
        rawHeaders: req.rawHeaders,
        address,
        gone: () => res.destroyed,
        admit: (headers) => {
          setHeaders(res, headers);
          if (secure && route.hsts) res.setHeader("strict-transport-security", route.hsts);
          if (expectsContinue) res.writeContinue();
          if (head.chunked || head.contentLength > 0)
            forwardWithBody(this.#ctx, req, res, route, head, path, startedAt);
          else forward(this.#ctx, req, res, route, head, path, startedAt);
        },
        // Node discards an unread body after the answer and keeps the connection (nginx does the same).
        refuse: (rule, verdict) =>
          replyRateLimited(res, rule, verdict, {
            openai: route.model !== null,
            cors: route.model !== null,
            close: expectsContinue || this.#ctx.closing,
          }),
      });
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

  /** Bytes of request bodies this process holds before dialling replicas (diagnostics, tests). */
  bufferedBodyBytes(): number {
    return this.#ctx.bodies.used;
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
    const secure = (req.socket as TLSSocket).encrypted === true;
    const address = clientAddress(req.socket.remoteAddress);
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http", true);
    const routed = this.#route(req, head, secure);
    if ("redirect" in routed) replyRawRedirect(socket, routed.redirect);
    else if ("route" in routed) {
      const { route, path } = routed;
      checkRateLimit(this.#ctx, {
        rules: route.rateLimits,
        path,
        rawHeaders: req.rawHeaders,
        address,
        gone: () => socket.destroyed,
        admit: () => tunnel(this.#ctx, req, socket, early, route, head, path, startedAt),
        refuse: (rule, verdict) => replyRateLimitedRaw(socket, rule, verdict),
      });
    } else if ("special" in routed) replyRaw(socket, 404, "no upgrades here");
    else if ("hold" in routed) {
      // Upgrades are not held (a raw socket has no response to park); the replica is still asked for.
      this.#holds.signal(routed.hold.name);
      replyRaw(socket, 503, `service ${routed.hold.name} has no replicas`);
    } else replyRaw(socket, routed.status, routed.message);
  };
}

function listenOn(server: Server, target: ListenTarget): Promise<number> {
  return new Promise((resolve, reject) => {
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

/** 301 to the HTTPS origin; a request body is not read, so its connection closes. */
function redirect(res: ServerResponse, location: string, close: boolean): void {
  const body = `moved to ${location}\n`;
  const headers = ["location", location, "content-type", "text/plain; charset=utf-8"];
  headers.push("content-length", String(Buffer.byteLength(body)));
  if (close) {
    headers.push("connection", "close");
    res.shouldKeepAlive = false;
  }
  res.writeHead(301, headers);
  res.end(body);
}

function replyRawRedirect(socket: Duplex, location: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 301 Moved Permanently\r\nlocation: ${location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
  );
}
