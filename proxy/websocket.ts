/**
 * @module
 * Upgrade pass-through (WebSocket, and any other `Upgrade` a replica may accept): dial a replica,
 * replay the client's request head with the forwarding headers, then pipe both sockets until either
 * side closes. The replica's answer (101 or a refusal) reaches the client byte for byte. Like nginx's
 * `proxy_read_timeout`, a tunnel idle for the service's read timeout is closed.
 */
import type { IncomingMessage } from "node:http";
import { isIP, connect as netConnect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { ReplicaState } from "./balancer.ts";
import type { ProxyContext } from "./context.ts";
import { type RequestHead, setUpstreamHost } from "./headers.ts";
import { replyRaw } from "./replies.ts";
import type { ServiceRoute } from "./routes.ts";

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;

export function tunnel(
  ctx: ProxyContext,
  req: IncomingMessage,
  client: Duplex,
  early: Buffer,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  startedAt: number,
): void {
  new Tunnel(ctx, req, client, early, route, head, path, startedAt).start();
}

class Tunnel {
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #client: Duplex;
  readonly #early: Buffer;
  readonly #route: ServiceRoute;
  readonly #head: RequestHead;
  readonly #path: string;
  readonly #startedAt: number;
  #upstream: Socket | null = null;
  #replica: ReplicaState | null = null;
  #tried: ReplicaState[] = [];
  #connected = false;
  #done = false;

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    client: Duplex,
    early: Buffer,
    route: ServiceRoute,
    head: RequestHead,
    path: string,
    startedAt: number,
  ) {
    this.#ctx = ctx;
    this.#req = req;
    this.#client = client;
    this.#early = early;
    this.#route = route;
    this.#head = head;
    this.#path = path;
    this.#startedAt = startedAt;
  }

  start(): void {
    this.#ctx.begin();
    this.#ctx.tunnels.add(this);
    this.#client.on("error", () => this.destroy());
    this.#client.once("close", () => this.destroy());
    this.#attempt();
  }

  #attempt(): void {
    const replica = this.#route.balancer.pick(Date.now(), this.#tried);
    if (!replica || this.#tried.length > this.#ctx.settings.maxRetries) {
      // Not destroy(): the refusal must be flushed before the client socket closes.
      this.#done = true;
      this.#ctx.tunnels.delete(this);
      this.#ctx.end();
      replyRaw(this.#client, 502, "the replica could not be reached");
      return;
    }
    this.#replica = replica;
    replica.inFlight++;
    const upstream = replica.https
      ? tlsConnect({
          host: replica.hostname,
          port: replica.port,
          servername: isIP(replica.hostname) ? undefined : replica.hostname,
          ALPNProtocols: ["http/1.1"],
        })
      : netConnect({ host: replica.hostname, port: replica.port });
    this.#upstream = upstream;
    upstream.setNoDelay(true);
    upstream.setTimeout(this.#ctx.settings.connectTimeoutMs);
    upstream.once(replica.https ? "secureConnect" : "connect", () => this.#onConnected(upstream));
    upstream.on("timeout", () => upstream.destroy(new Error(this.#connected ? "idle timeout" : "connect timeout")));
    upstream.on("error", (err) => this.#onUpstreamError(upstream, err));
    upstream.once("close", () => {
      if (this.#connected) this.destroy();
    });
  }

  #onConnected(upstream: Socket): void {
    if (this.#done) return;
    this.#connected = true;
    upstream.setTimeout(this.#route.readTimeoutMs);
    const replica = this.#replica!;
    setUpstreamHost(this.#head, replica.https || this.#head.host === undefined ? replica.authority : this.#head.host);
    const fields = this.#head.forward;
    let text = `${this.#req.method} ${replica.pathPrefix}${this.#path} HTTP/1.1\r\n`;
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
    upstream.write(`${text}\r\n`, "latin1");
    if (this.#early.length > 0) upstream.write(this.#early);
    upstream.once("data", (chunk: Buffer) => {
      const status = Number(STATUS_LINE.exec(chunk.toString("latin1", 0, 16))?.[1] ?? 0);
      if (status >= 500 || status === 0) this.#route.balancer.failed(replica, Date.now(), `HTTP ${status}`);
      else this.#route.balancer.succeeded(replica);
    });
    this.#client.pipe(upstream);
    upstream.pipe(this.#client);
    // Sockets of an HTTP server stay half-open after the peer's FIN, and so do most replicas': a
    // tunnel whose one side ended would hold both sockets (and a closing server's drain) until the
    // idle timeout. Like nginx, an end on either side ends the other and then closes the tunnel.
    const closeAfter = (to: Duplex) => () => to.end(() => this.destroy());
    this.#client.once("end", closeAfter(upstream));
    upstream.once("end", closeAfter(this.#client));
  }

  #onUpstreamError(upstream: Socket, err: Error): void {
    if (this.#done || upstream !== this.#upstream) return;
    const replica = this.#replica!;
    if (this.#connected) {
      this.destroy();
      return;
    }
    this.#route.balancer.failed(replica, Date.now(), (err as Error & { code?: string }).code ?? err.message);
    replica.inFlight--;
    this.#replica = null;
    this.#upstream = null;
    upstream.destroy();
    this.#tried.push(replica);
    this.#attempt();
  }

  /** Closes both sides (idempotent); counts the tunnel if it reached a replica. */
  destroy(): void {
    if (this.#done) return;
    this.#done = true;
    this.#ctx.tunnels.delete(this);
    this.#upstream?.destroy();
    this.#client.destroy();
    if (this.#replica) this.#replica.inFlight--;
    if (this.#connected) this.#route.counter.record((performance.now() - this.#startedAt) / 1000, Date.now());
    this.#ctx.end();
  }
}
