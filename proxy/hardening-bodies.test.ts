/**
 * Request bodies are read before a replica is dialled (nginx's `proxy_request_buffering on`): slow
 * uploads hold proxy sockets, not replica connections. Connections are counted on the replica's side.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until } from "../test/support/until.ts";
import { ProxyOptionsError, startTunedProxy } from "./index.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const HOST = `alpha.${DOMAIN}`;
const SMALL = `small.${DOMAIN}`;
let a: TestReplica;
/** Connections the replica accepted so far. */
let opened = 0;
const servers: ProxyServer[] = [];

async function proxy(bodyBuffer: { requestBytes: number; processBytes: number; readTimeoutMs: number }) {
  const server = new ProxyServer({ ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000, bodyBuffer }, () => {});
  server.apply(
    configDocument(1, [
      { name: "alpha", replicas: [a.url] },
      { name: "small", replicas: [a.url], client_max_body_size: 1_000 },
    ]),
  );
  servers.push(server);
  return { server, port: await server.listen({ host: "127.0.0.1", port: 0 }) };
}

let main: { server: ProxyServer; port: number };

beforeAll(async () => {
  a = await startReplica("a");
  a.server.on("connection", () => opened++);
  main = await proxy({ requestBytes: 4_096, processBytes: 1024 * 1024, readTimeoutMs: 60_000 });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await a.close();
});

interface Upload {
  /** Sends the rest of the request; resolves with everything the proxy answered, once it closes. */
  finish(rest: string): Promise<string>;
  /** Everything the proxy answered, once it closes. */
  reply: Promise<string>;
}

/** A client that sent its request head and the start of its body (handed to the kernel). */
function startUpload(port: number, head: string, start: string): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let out = "";
    const reply = new Promise<string>((done) => socket.on("close", () => done(out)));
    socket.on("data", (d: Buffer) => {
      out += d.toString("latin1");
    });
    socket.on("error", reject);
    socket.on("connect", () =>
      socket.write(head + start, () =>
        resolve({
          reply,
          finish: (rest) => {
            socket.write(rest);
            return reply;
          },
        }),
      ),
    );
  });
}

const post = (path: string, host: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;
const status = (reply: string) => reply.slice(0, 12);
const echoed = (reply: string) =>
  JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as { url: string; body: string };

describe("request body buffering", () => {
  it("50 slow uploads hold no replica connection until their bodies complete", async () => {
    const before = opened;
    const seen = a.seen.length;
    const uploads = await Promise.all(
      Array.from({ length: 50 }, (_, i) => startUpload(main.port, post(`/up/${i}`, HOST, 200), "x".repeat(100))),
    );
    // The proxy holds the first half of every body...
    await until("50 half bodies held", () => main.server.bufferedBodyBytes() === 50 * 100);
    // ...and a request sent after them reaches the replica (on the only connection it has).
    expect((await send(main.port, { host: HOST, path: "/barrier" })).status).toBe(200);
    expect(opened - before).toBeLessThanOrEqual(1);
    expect(a.openConnections).toBeLessThanOrEqual(1);
    expect(a.seen.slice(seen).map((r) => r.url)).toEqual(["/barrier"]);

    const replies = await Promise.all(uploads.map((u) => u.finish("y".repeat(100))));
    replies.forEach((reply, i) => {
      expect(status(reply)).toBe("HTTP/1.1 200");
      expect(echoed(reply)).toMatchObject({ url: `/up/${i}`, body: `${"x".repeat(100)}${"y".repeat(100)}` });
    });
    await until("buffers given back", () => main.server.bufferedBodyBytes() === 0);
  });

  it("streams a body larger than the bound once the bound is read, intact", async () => {
    const upload = await startUpload(main.port, post("/large", HOST, 10_000), "a".repeat(5_000));
    // Past the bound the replica is dialled while the client is still sending.
    await until("the replica sees the request", () => a.seen.some((r) => r.url === "/large"));
    const reply = await upload.finish("b".repeat(5_000));
    expect(status(reply)).toBe("HTTP/1.1 200");
    expect(echoed(reply).body).toBe(`${"a".repeat(5_000)}${"b".repeat(5_000)}`);
    await until("buffers given back", () => main.server.bufferedBodyBytes() === 0);
  });

  it("forwards a chunked body read whole", async () => {
    const upload = await startUpload(
      main.port,
      `POST /chunked HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
      "5\r\nhello\r\n",
    );
    const reply = await upload.finish("6\r\n world\r\n0\r\n\r\n");
    expect(status(reply)).toBe("HTTP/1.1 200");
    expect(echoed(reply).body).toBe("hello world");
  });

  it("answers 413 for a chunked body passing client_max_body_size while it is read, before any replica", async () => {
    const seen = a.seen.length;
    const upload = await startUpload(
      main.port,
      `POST /too-big HTTP/1.1\r\nHost: ${SMALL}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `5dc\r\n${"z".repeat(1_500)}\r\n`,
    );
    expect(status(await upload.reply)).toBe("HTTP/1.1 413");
    expect(a.seen.length).toBe(seen);
  });

  it("streams requests as they come once the process's buffers are full", async () => {
    const tight = await proxy({ requestBytes: 100, processBytes: 150, readTimeoutMs: 60_000 });
    const first = await startUpload(tight.port, post("/first", HOST, 200), "f".repeat(100));
    await until("the first body held", () => tight.server.bufferedBodyBytes() === 100);
    const second = await startUpload(tight.port, post("/second", HOST, 200), "s".repeat(100));
    // No room left for the second body: it is streamed, so the replica sees it before its end.
    await until("the replica sees the second request", () => a.seen.some((r) => r.url === "/second"));
    expect(a.seen.some((r) => r.url === "/first")).toBe(false);
    const replies = await Promise.all([first.finish("F".repeat(100)), second.finish("S".repeat(100))]);
    expect(replies.map((r) => echoed(r).body)).toEqual([
      `${"f".repeat(100)}${"F".repeat(100)}`,
      `${"s".repeat(100)}${"S".repeat(100)}`,
    ]);
    await until("buffers given back", () => tight.server.bufferedBodyBytes() === 0);
  });

  it("answers 408 and closes when a body stalls longer than the read timeout, before any replica", async () => {
    const impatient = await proxy({ requestBytes: 4_096, processBytes: 1024 * 1024, readTimeoutMs: 200 });
    const seen = a.seen.length;
    const upload = await startUpload(impatient.port, post("/stalled", HOST, 100), "x".repeat(10));
    const reply = await upload.reply;
    expect(status(reply)).toBe("HTTP/1.1 408");
    expect(reply).toContain("nothing arrived for 0.2 s");
    expect(a.seen.length).toBe(seen);
    expect(impatient.server.bufferedBodyBytes()).toBe(0);
  });

  it("answers the OpenAI entrypoint's stalled body with 408 in OpenAI's error shape", async () => {
    const impatient = await proxy({ requestBytes: 4_096, processBytes: 1024 * 1024, readTimeoutMs: 200 });
    const upload = await startUpload(impatient.port, post("/v1/chat/completions", `gateway.${DOMAIN}`, 100), "{");
    const reply = await upload.reply;
    expect(status(reply)).toBe("HTTP/1.1 408");
    expect(JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4))).toMatchObject({
      error: { type: "invalid_request_error", message: expect.stringContaining("nothing arrived for 0.2 s") },
    });
  });

  it("refuses unusable buffering settings, naming the field", async () => {
    const bodyBuffer = { requestBytes: -1, processBytes: 1, readTimeoutMs: 1 };
    await expect(startTunedProxy({ httpPort: 0, processes: 0 }, { settings: { bodyBuffer } })).rejects.toThrow(
      ProxyOptionsError,
    );
    await expect(startTunedProxy({ httpPort: 0, processes: 0 }, { settings: { bodyBuffer } })).rejects.toThrow(
      /settings\.bodyBuffer\.requestBytes/,
    );
  });
});
