/**
 * @module
 * A proxy process's listening side: the `node:http` listener and the optional `node:https` one (SNI
 * over a `CertificateSet`), their Node settings, the client connections open on either, and how they
 * close: stop accepting, give idle keep-alive connections their bound, let running exchanges drain,
 * then cut the rest. Apart from `server.ts`, which routes and carries out the requests these listeners
 * hand it, because the sockets' lifecycle is one concern and the requests' another.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import { Server as NetServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { onClientError } from "./client-error.ts";
import type { ServerSettings } from "./settings.ts";
import type { CertificateSet } from "./tls.ts";

export type ListenTarget = { host: string; port: number } | { handle: object };

/** What the listeners hand their requests to (`ProxyServer`'s handlers). */
export interface ListenerHandlers {
  onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  onUpgrade: (req: IncomingMessage, socket: Duplex, early: Buffer) => void;
  onCheckContinue: (req: IncomingMessage, res: ServerResponse) => void;
}

export class Listeners {
  readonly #settings: ServerSettings;
  readonly #handlers: ListenerHandlers;
  readonly #server: Server;
  /** The HTTPS listener, made by the first `listenTls`. */
  #tlsServer: TlsServer | null = null;
  /** Client connections open on either listener (closing waits for them, `close`). */
  readonly #connections = new Set<Socket>();
  #connectionsGone: (() => void) | null = null;
  /** Port in the `Location` of HTTP → HTTPS redirects (omitted when 443); null: no HTTPS listener. */
  #httpsPort: number | null = null;

  constructor(settings: ServerSettings, handlers: ListenerHandlers) {
    this.#settings = settings;
    this.#handlers = handlers;
    this.#server = createServer(this.#serverOptions(), handlers.onRequest);
    this.#configure(this.#server);
  }

  /** The HTTPS listener's port; null without one. */
  get httpsPort(): number | null {
    return this.#httpsPort;
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
    server.on("connection", (socket: Socket) => {
      this.#connections.add(socket);
      socket.once("close", () => {
        this.#connections.delete(socket);
        if (this.#connections.size === 0) this.#connectionsGone?.();
      });
    });
    // One more than allowed, so an oversized request is seen (Node silently drops fields past the limit).
    server.maxHeadersCount = this.#settings.maxHeadersCount + 1;
    server.on("upgrade", this.#handlers.onUpgrade);
    // Answer `Expect: 100-continue` only once the request is routable: a refused body is never sent.
    server.on("checkContinue", this.#handlers.onCheckContinue);
    // Answers owed to earlier pipelined requests leave before the refusal of a malformed one.
    server.on("clientError", onClientError);
  }

  listen(target: ListenTarget): Promise<number> {
    return listenOn(this.#server, target);
  }

  /** Starts the HTTPS listener (SNI picks among `certificates`); resolves with its port. */
  async listenTls(target: ListenTarget, certificates: CertificateSet): Promise<number> {
    if (this.#tlsServer) throw new Error("the HTTPS listener is already started");
    const server = createTlsServer(
      {
        ...this.#serverOptions(),
        SNICallback: certificates.sni,
        minVersion: "TLSv1.2",
        ALPNProtocols: ["http/1.1"],
      },
      this.#handlers.onRequest,
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

  /**
   * Stops accepting; waits for every connection to end until the idle bound (`startedAt` +
   * `drainIdleMs` with a `successor`, else none), then closes the idle ones; waits for `drained`
   * (the running exchanges) until `startedAt` + `drainTimeoutMs`; then cuts every connection left.
   */
  async close(successor: boolean, startedAt: number, drained: () => Promise<void>): Promise<void> {
    const servers = this.#tlsServer ? [this.#server, this.#tlsServer] : [this.#server];
    const settings = this.#settings;
    const drainBound = startedAt + settings.drainTimeoutMs;
    // Only a successor on the same sockets can answer an idle connection's next request; without
    // one, waiting for it would only delay the shutdown.
    const idleBound = successor ? startedAt + Math.min(settings.drainIdleMs, settings.drainTimeoutMs) : startedAt;
    // Stop accepting only: Node's own `close` also closes the idle connections, the race above.
    for (const server of servers) if (server.listening) NetServer.prototype.close.call(server);
    // Every connection ended (each carried its last request, or its client closed it), or the idle bound.
    const gone = new Promise<void>((resolve) => {
      this.#connectionsGone = resolve;
      if (this.#connections.size === 0) resolve();
    });
    await until(gone, idleBound);
    // The idle ones left have had their chance; exchanges still running get up to the drain bound.
    for (const server of servers) server.closeIdleConnections();
    await until(drained(), drainBound);
    for (const server of servers) {
      server.closeAllConnections();
      // Clears Node's connection sweep (the listener is already closed).
      server.close();
    }
  }
}

/** Resolves when `promise` does or at the `deadline` (epoch ms), whichever is first. */
async function until(promise: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
  });
  await Promise.race([promise, bound]);
  clearTimeout(timer);
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
