/**
 * @module
 * The proxy in one process: `node:http`/`node:https` listeners whose requests are routed
 * (`route-request.ts`, a pure decision from the head and the table in force) and carried out
 * (`dispatch.ts`: forward, tunnel, hold, redirect or answer), and routing tables swapped atomically
 * when a document arrives. Settings: `settings.ts`. Every request gets its id and trace context
 * as it is read (`headers.ts`), and its record goes to the sinks of the document's
 * `observability` once it ends (`observe/`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ConfigDocument } from "../schema/config-document.ts";
import { answerChallenge, CHALLENGE_PREFIX, type ChallengeTokens } from "./acme-challenge.ts";
import { onClientError, trackResponse } from "./client-error.ts";
import { ProxyContext } from "./context.ts";
import { type Dispatch, dispatchRequest, dispatchUpgrade } from "./dispatch.ts";
import { clientAddress, keepIdentity, readRequestHead } from "./headers.ts";
import { HoldQueue } from "./hold.ts";
import { watchExchange } from "./observe/basic-record.ts";
import type { ExchangeSink } from "./observe/exchange-record.ts";
import { taggedIdentity, tagRequest } from "./observe/ids.ts";
import { Observability } from "./observe/sinks.ts";
import { LocalGate, type RateLimitGate } from "./rate-limit-gate.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { type RoutingView, routeRequest } from "./route-request.ts";
import { buildRoutingTable, EMPTY_TABLE, type RoutingTable } from "./routes.ts";
import { LocalRoutingGate, type RoutingGate } from "./routing-gate.ts";
import type { ServerSettings } from "./settings.ts";
import { type RawServiceStats, StatsRegistry } from "./stats.ts";
import { CertificateSet, type TlsCertificate } from "./tls.ts";
import { UpstreamPools } from "./upstream-pools.ts";

export type ListenTarget = { host: string; port: number } | { handle: object };

/** Where this process's access log and its rotation are (`observe/sinks.ts`). */
export interface ServerObserveOptions {
  /** The agent's state directory (`<stateDir>/access.log`); null: no access log file. */
  stateDir: string | null;
  /** A child process: its parent rotates the access log. Absent: this process rotates it. */
  askRotation?: () => void;
}

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
  readonly #dispatch: Dispatch;
  readonly #observe: Observability;
  #table: RoutingTable = EMPTY_TABLE;
  /** What `routeRequest` reads of this process; its getters follow the table and listeners in force. */
  readonly #view: RoutingView;
  #closed: Promise<void> | null = null;

  /**
   * `rateLimits`: where the host's rate-limit buckets are (a child process asks its parent); default: in this process.
   * `onHold(service)`: a request waits for a service scaled to zero (rate-limited per service).
   * `routing`: where the host's routing state is (a child process asks its parent); default: in this process.
   * `observe`: where the access log goes; default: no state directory (standard output only).
   */
  constructor(
    settings: ServerSettings,
    log: (line: string) => void,
    rateLimits?: RateLimitGate,
    onHold: (service: string) => void = () => {},
    routing: RoutingGate = new LocalRoutingGate(),
    observe: ServerObserveOptions = { stateDir: null },
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
    this.#dispatch = { ctx: this.#ctx, holds: this.#holds, retryAfterSeconds: settings.retryAfterSeconds };
    this.#observe = new Observability({ ...observe, sinks: this.#ctx.sinks, limits: settings.observe, log });
    const server = this;
    this.#view = {
      get table() {
        return server.#table;
      },
      maxHeadersCount: settings.maxHeadersCount,
      get httpsPort() {
        return server.#httpsPort;
      },
      hasCertificate: (host) => this.#certificates.has(host),
    };
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
    this.#observe.apply(doc);
    this.#table = table;
    this.#holds.release(table);
  }

  /** The sinks every request's record goes to (the document's access log and span exporter among them). */
  get sinks(): ExchangeSink[] {
    return this.#ctx.sinks;
  }

  /** The access log file was rotated (by the parent process): lines go to a new file at its path. */
  reopenAccessLog(): void {
    this.#observe.reopenAccessLog();
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
    // The last records are in: write the lines and send the spans still queued.
    await this.#observe.close();
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res, false);
  };

  /** Routes a held request anew once its service has a replica (`dispatch.ts`). */
  readonly #again = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    this.#handle(req, res, expectsContinue);
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
    const tracing = this.#observe.tracing;
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http", false, tracing);
    const first = taggedIdentity(res);
    if (first) keepIdentity(head, first, tracing);
    else tagRequest(res, head);
    const routed = routeRequest(req, head, secure, this.#view);
    if (this.#ctx.sinks.length > 0) {
      watchExchange(this.#ctx.sinks, res, req.method ?? "", req.url ?? "", head, address, startedAt, routed);
    }
    dispatchRequest(this.#dispatch, routed, req, res, head, address, secure, expectsContinue, startedAt, this.#again);
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
    const head = readRequestHead(req.rawHeaders, address, secure ? "https" : "http", true, this.#observe.tracing);
    tagRequest(socket, head);
    const routed = routeRequest(req, head, secure, this.#view);
    dispatchUpgrade(this.#dispatch, routed, req, socket, early, head, address, startedAt);
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
