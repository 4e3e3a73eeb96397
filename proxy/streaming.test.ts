import { createHash, randomBytes } from "node:crypto";
import { request, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { Agent, WebSocket } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { type Handler, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { type EchoWebSocketServer, startEchoWebSocketServer } from "../test/fakes/websocket-echo.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { rawExchange, send } from "../test/support/http-client.ts";
import { until } from "../test/support/until.ts";
import { type ProxyHandle, startProxy } from "./index.ts";

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function replica(name: string, handler?: Handler): Promise<TestReplica> {
  const r = await startReplica(name, handler);
  cleanups.push(() => r.close());
  return r;
}

async function proxyFor(url: string, overrides: { client_max_body_size?: number } = {}): Promise<ProxyHandle> {
  const p = await startProxy({
    httpPort: 0,
    processes: 0,
    initialConfig: configDocument(1, [{ name: "alpha", replicas: [url], ...overrides }]),
  });
  cleanups.push(() => p.close());
  return p;
}

const HOST = `alpha.${DOMAIN}`;

/** Resolves with the next `predicate`-satisfying value, or fails after `ms`. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  ]);
}

describe("server-sent events", () => {
  it("delivers the headers at once and each event before the replica sends the next", async () => {
    let stream: ServerResponse | undefined;
    let opened!: () => void;
    const streamOpened = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const a = await replica("a", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      stream = res;
      opened();
    });
    const p = await proxyFor(a.url);

    const received: string[] = [];
    let notify: (() => void) | null = null;
    const response = await within(
      2_000,
      "response headers",
      new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
        const req = request({
          host: "127.0.0.1",
          port: p.port,
          path: "/v1/stream",
          setHost: false,
          headers: { host: HOST },
        });
        req.on("response", resolve);
        req.on("error", reject);
        req.end();
      }),
    );
    expect(response.headers["content-type"]).toBe("text/event-stream");
    response.on("data", (chunk: Buffer) => {
      received.push(chunk.toString());
      notify?.();
    });
    await streamOpened;
    for (let i = 1; i <= 5; i++) {
      const arrived = new Promise<void>((resolve) => {
        notify = resolve;
      });
      stream!.write(`data: ${i}\n\n`);
      // The replica sends event i+1 only after the client got event i: a buffering proxy stalls here.
      await within(2_000, `event ${i}`, arrived);
      expect(received.join("")).toBe(Array.from({ length: i }, (_, k) => `data: ${k + 1}\n\n`).join(""));
    }
    const ended = new Promise<void>((resolve) => response.on("end", resolve));
    stream!.end();
    await within(2_000, "end of stream", ended);
  });
});

describe("bodies", () => {
  it("streams a large request body and a large response body intact", async () => {
    const a = await replica("a", (req, res) => {
      const hash = createHash("sha256");
      let size = 0;
      req.on("data", (c: Buffer) => {
        hash.update(c);
        size += c.length;
      });
      req.on("end", () => {
        res.writeHead(200, { "x-upload-sha256": hash.digest("hex"), "x-upload-size": String(size) });
        // 8 MiB download in 64 KiB writes.
        const block = Buffer.alloc(64 * 1024, "z");
        let left = 128;
        const pump = () => {
          while (left > 0) {
            left--;
            if (!res.write(block)) return void res.once("drain", pump);
          }
          res.end();
        };
        pump();
      });
    });
    const p = await proxyFor(a.url);
    const upload = randomBytes(3 * 1024 * 1024);
    const res = await send(p.port, {
      host: HOST,
      method: "POST",
      body: upload,
      headers: { "content-length": String(upload.length) },
    });
    expect(res.status).toBe(200);
    expect(res.headers["x-upload-size"]).toBe(String(upload.length));
    expect(res.headers["x-upload-sha256"]).toBe(createHash("sha256").update(upload).digest("hex"));
    expect(res.body.length).toBe(8 * 1024 * 1024);
  });

  it("holds a fast replica back while the client does not read (no whole-body buffering)", async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const a = await replica("a", (_req, res) => {
      res.writeHead(200, { "content-length": String(total) });
      const block = Buffer.alloc(256 * 1024);
      const pump = () => {
        while (written < total) {
          written += block.length;
          if (!res.write(block)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    const p = await proxyFor(a.url);
    const socket = connect(p.port, "127.0.0.1");
    cleanups.push(async () => socket.destroy());
    socket.pause();
    socket.write(`GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    // The window below starts once the replica is sending (a loaded machine may take a while to get
    // the request there); it watches for the absence of buffering, which no event can announce.
    await until("the replica writing", () => written > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    // Only socket buffers fill up (a few MiB each on loopback), nothing like the whole body.
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(total / 2);
  });

  it("holds a fast client back while the replica does not read", async () => {
    const a = await replica("a", () => {});
    const p = await proxyFor(a.url);
    const total = 64 * 1024 * 1024;
    let accepted = 0;
    const req = request({
      host: "127.0.0.1",
      port: p.port,
      method: "POST",
      setHost: false,
      headers: { host: HOST, "content-length": String(total) },
    });
    req.on("error", () => {});
    cleanups.push(async () => req.destroy());
    const block = Buffer.alloc(256 * 1024);
    const pump = () => {
      while (accepted < total) {
        accepted += block.length;
        if (!req.write(block)) return void req.once("drain", pump);
      }
    };
    pump();
    // As above: the window starts once the upload reached the replica that does not read it.
    await until("the upload on the replica", () => a.seen.length > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(total / 2);
    // While the upload is stalled the proxy does not read the client's socket, so it would notice the
    // client leaving only when the replica reads again (or read_timeout_ms): end it from that side.
    await a.kill();
  });

  it("answers 413 for a declared Content-Length over client_max_body_size without contacting the replica", async () => {
    const a = await replica("a");
    const p = await proxyFor(a.url, { client_max_body_size: 1024 });
    const reply = await rawExchange(
      p.port,
      `POST /v1/upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1025\r\nContent-Type: text/plain\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply.toLowerCase()).toContain("connection: close");
    expect(a.seen).toHaveLength(0);
    // At the limit it passes.
    const ok = await send(p.port, { host: HOST, method: "POST", body: "x".repeat(1024) });
    expect(ok.status).toBe(200);
  });

  it("answers Expect: 100-continue only for a request it will forward", async () => {
    const a = await replica("a");
    const p = await proxyFor(a.url, { client_max_body_size: 1024 });
    const refused = await rawExchange(
      p.port,
      `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(refused).toMatch(/^HTTP\/1\.1 413 /);
    expect(refused).not.toContain("100 Continue");
    const accepted = await new Promise<{ continued: boolean; status: number }>((resolve, reject) => {
      let continued = false;
      const req = request({
        host: "127.0.0.1",
        port: p.port,
        method: "POST",
        setHost: false,
        headers: { host: HOST, "content-length": "5", expect: "100-continue" },
      });
      req.on("continue", () => {
        continued = true;
        req.end("hello");
      });
      req.on("response", (res) => {
        res.resume();
        resolve({ continued, status: res.statusCode ?? 0 });
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(accepted).toEqual({ continued: true, status: 200 });
    expect(a.seen.at(-1)?.headers.expect).toBeUndefined();
  });

  it("answers 413 once a chunked body outgrows client_max_body_size", async () => {
    const a = await replica("a", (req, res) => {
      // Reads everything, answers only at the end: the proxy must stop it first.
      req.resume();
      req.on("end", () => res.end("too late"));
    });
    const p = await proxyFor(a.url, { client_max_body_size: 10_000 });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: p.port,
        method: "POST",
        path: "/",
        setHost: false,
        headers: { host: HOST, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      const chunk = "y".repeat(4_000);
      let sent = 0;
      const tick = setInterval(() => {
        if (sent++ < 10 && !req.destroyed) req.write(chunk);
        else clearInterval(tick);
      }, 20);
    });
    expect(status).toBe(413);
  });
});

describe("client aborts", () => {
  it("aborts the upstream request when the client goes away mid-response", async () => {
    let replicaSawClose!: () => void;
    const closed = new Promise<void>((resolve) => {
      replicaSawClose = resolve;
    });
    const a = await replica("a", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      res.on("close", () => replicaSawClose());
    });
    const p = await proxyFor(a.url);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: p.port, setHost: false, headers: { host: HOST } });
      req.on("response", (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => {});
      req.on("close", resolve);
      req.once("error", reject);
      req.end();
    });
    await within(3_000, "the replica to see the abort", closed);
  });

  it("aborts the upstream request when the client goes away before any response", async () => {
    let replicaSawClose!: () => void;
    const closed = new Promise<void>((resolve) => {
      replicaSawClose = resolve;
    });
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const a = await replica("a", (req) => {
      req.socket.on("close", () => replicaSawClose());
      arrived();
    });
    const p = await proxyFor(a.url);
    const socket = connect(p.port, "127.0.0.1");
    socket.write(`GET /slow HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    await within(3_000, "the request to reach the replica", requestArrived);
    socket.destroy();
    await within(3_000, "the replica to see the abort", closed);
  });
});

describe("websocket", () => {
  let echo: EchoWebSocketServer;

  it("tunnels an upgrade to the replica and echoes both ways", async () => {
    echo = await startEchoWebSocketServer();
    cleanups.push(() => echo.close());
    const p = await proxyFor(`${echo.url}/base`);
    // Dial the proxy whatever the URL's host, so the Host header names the service.
    const agent = new Agent({
      connect: (_opts, callback) => {
        const s = connect(p.port, "127.0.0.1");
        s.once("connect", () => callback(null, s));
        s.once("error", (err) => callback(err, null));
      },
    });
    cleanups.push(() => agent.close());
    const ws = new WebSocket(`ws://${HOST}/socket`, { dispatcher: agent });
    const replies: string[] = [];
    await within(
      3_000,
      "two echoes",
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => ws.send("one");
        ws.onmessage = (event) => {
          replies.push(String(event.data));
          if (replies.length === 1) ws.send("two");
          else resolve();
        };
        ws.onerror = () => reject(new Error("websocket error"));
      }),
    );
    expect(replies).toEqual(["echo: one", "echo: two"]);
    const closed = new Promise<void>((resolve) => {
      ws.onclose = () => resolve();
    });
    ws.close();
    await within(3_000, "close", closed);
    const upgrade = echo.upgrades[0]!;
    expect(upgrade.url).toBe("/base/socket");
    expect(upgrade.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(upgrade.headers["x-forwarded-host"]).toBe(HOST);
    expect(upgrade.headers.upgrade).toBe("websocket");
    expect(upgrade.headers.connection).toBe("upgrade");
  });

  it("closes the tunnel when the client half-closes it, as nginx does (a closing proxy does not wait on it)", async () => {
    echo = await startEchoWebSocketServer();
    cleanups.push(() => echo.close());
    const p = await proxyFor(echo.url);
    const socket = connect(p.port, "127.0.0.1");
    const upgraded = new Promise<string>((resolve) =>
      socket.once("data", (chunk: Buffer) => resolve(chunk.toString())),
    );
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(
      `GET /socket HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    expect(await within(3_000, "the 101", upgraded)).toMatch(/^HTTP\/1\.1 101 /);
    // The replica (an HTTP server's socket) stays half-open after our FIN: only the proxy can end it.
    socket.end();
    await within(3_000, "the proxy to close the tunnel", closed);
  });

  it("answers 502 on the raw socket when the replica cannot be reached", async () => {
    const gone = await startReplica("gone");
    await gone.close();
    const p = await proxyFor(gone.url);
    const reply = await rawExchange(
      p.port,
      `GET /socket HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    expect(reply).toMatch(/^HTTP\/1\.1 502 /);
  });
});
