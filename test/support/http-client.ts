/**
 * @module
 * Plain HTTP/1.1 clients for tests: `send` with any Host header (fetch forbids setting it), a fresh
 * connection per request unless an agent is given; and `rawExchange`, which writes bytes on a socket
 * and reads until the server closes or goes quiet, for requests no well-behaved client would send.
 */
import { type Agent, request } from "node:http";
import { connect } from "node:net";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

export interface SendOptions {
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  agent?: Agent | false;
}

export function send(port: number, options: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: options.path ?? "/",
        method: options.method ?? "GET",
        setHost: false,
        agent: options.agent ?? false,
        headers: { host: options.host, ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Writes `bytes`, then collects what comes back until the connection closes or `quietMs` pass. */
export function rawExchange(port: number, bytes: string, quietMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let out = "";
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    socket.on("connect", () => {
      socket.write(bytes);
      arm();
    });
    socket.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      arm();
    });
    socket.on("close", done);
    socket.on("error", (err) => (out ? done() : reject(err)));
  });
}
