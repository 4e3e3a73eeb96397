/**
 * @module
 * A replica for tests: a real HTTP server on 127.0.0.1 that, unless given its own handler, answers
 * every request with JSON describing what it received (who it is, method, URL, raw headers, body).
 * It remembers requests and open connections so tests can see what reached it and when the proxy
 * let go of it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ENGINE_SCRAPER_USER_AGENT } from "../../proxy/engine/fetch-metrics.ts";

export interface SeenRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: IncomingMessage["headers"];
}

export interface Echo extends SeenRequest {
  replica: string;
  body: string;
}

export interface TestReplica {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly server: Server;
  readonly seen: SeenRequest[];
  /** Connections currently open to this replica. */
  readonly openConnections: number;
  /** Stops listening and cuts every connection (a crashed replica). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function echo(name: string): Handler {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body: Echo = {
        replica: name,
        method: req.method ?? "",
        url: req.url ?? "",
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      const text = JSON.stringify(body);
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  };
}

/**
 * A replica with one path per way an exchange can end, for in-flight accounting tests:
 * `/v1/sse` streams one event, `[DONE]` (split across two writes) once `done()` is called, and stays
 * open until `release()`;
 * `/v1/broken` dies mid-body, `/v1/slow` answers after `slowMs`, `/v1/error` is a 500, else 200.
 */
export function endings(slowMs: number): { handler: Handler; done: () => void; release: () => void } {
  let finish: (() => void) | null = null;
  let end: (() => void) | null = null;
  const handler: Handler = (req, res) => {
    if (req.url === "/v1/sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('data: {"token":"a"}\n\n');
      // `[DONE]` comes split across two writes, and only when the test says so (`done`): a test
      // can look at the stream's first event before the proxy sees the end of it.
      finish = () => {
        res.write("data: [DO");
        setTimeout(() => res.write("NE]\n\n"), 20);
      };
      end = () => res.end();
    } else if (req.url === "/v1/broken") {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
      setTimeout(() => res.destroy(), 20);
    } else if (req.url === "/v1/slow") {
      setTimeout(() => res.end("late"), slowMs);
    } else if (req.url === "/v1/error") {
      res.writeHead(500);
      res.end("boom");
    } else res.end("ok");
  };
  return { handler, done: () => finish?.(), release: () => end?.() };
}

export async function startReplica(name: string, handler: Handler = echo(name), port = 0): Promise<TestReplica> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    // The host's engine scrapes (`proxy/engine/`) are not what a test sent through the gateway.
    if (req.headers["user-agent"] !== ENGINE_SCRAPER_USER_AGENT)
      seen.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, headers: req.headers });
    handler(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  const stop = (cut: boolean) =>
    new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      if (cut) for (const s of sockets) s.destroy();
      else server.closeAllConnections();
    });
  return {
    name,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    server,
    seen,
    get openConnections() {
      return sockets.size;
    },
    kill: () => stop(true),
    close: () => stop(false),
  };
}
