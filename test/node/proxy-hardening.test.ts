import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHandle, startTunedProxy } from "../../proxy/index.ts";
import { configDocument, DOMAIN } from "../../proxy/testing/config-builder.ts";
import { rawExchange } from "../../proxy/testing/http-client.ts";
import { startReplica, type TestReplica } from "../../proxy/testing/replica-server.ts";

let a: TestReplica;
let p: ProxyHandle;
const HOST = `alpha.${DOMAIN}`;

beforeAll(async () => {
  a = await startReplica("a");
  p = await startTunedProxy(
    { httpPort: 0, workers: 0, initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]) },
    { settings: { maxHeadersCount: 20, maxHeaderSize: 4096, headersTimeoutMs: 500 } },
  );
});

afterAll(async () => {
  await p.close();
  await a.close();
});

const statusLines = (reply: string) => reply.match(/^HTTP\/1\.1 \d{3}/gm) ?? [];

describe("request smuggling", () => {
  it("refuses Content-Length together with Transfer-Encoding, and the request hidden in the body", async () => {
    const before = a.seen.length;
    const smuggled = `GET /admin HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
    const reply = await rawExchange(
      p.port,
      `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 400"]);
    expect(a.seen.length).toBe(before);
  });

  it("refuses conflicting Content-Length values", async () => {
    const before = a.seen.length;
    const reply = await rawExchange(
      p.port,
      `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 400"]);
    expect(a.seen.length).toBe(before);
  });

  it("refuses a Transfer-Encoding that does not end in chunked", async () => {
    const reply = await rawExchange(
      p.port,
      `POST / HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 400"]);
  });

  it("refuses two Host headers", async () => {
    const reply = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\nHost: other.${DOMAIN}\r\n\r\n`);
    expect(statusLines(reply)).toEqual(["HTTP/1.1 400"]);
  });

  it("forwards a well-framed chunked body", async () => {
    const reply = await rawExchange(
      p.port,
      `POST /x HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 200"]);
    expect(reply).toContain('"body":"hello"');
  });
});

describe("limits", () => {
  it("answers 431 for more header fields than allowed", async () => {
    const fields = Array.from({ length: 20 }, (_, i) => `X-F${i}: v\r\n`).join("");
    const reply = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n${fields}\r\n`);
    expect(statusLines(reply)).toEqual(["HTTP/1.1 431"]);
    const within = Array.from({ length: 18 }, (_, i) => `X-F${i}: v\r\n`).join("");
    const ok = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n${within}Connection: close\r\n\r\n`);
    expect(statusLines(ok)).toEqual(["HTTP/1.1 200"]);
  });

  it("answers 431 for a request head larger than maxHeaderSize", async () => {
    const reply = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${"b".repeat(5000)}\r\n\r\n`);
    expect(statusLines(reply)).toEqual(["HTTP/1.1 431"]);
  });

  it("drops a client that does not finish its request head in time", async () => {
    // The client waits at most 2.9 s for an answer: Node's defaults (60 s head timeout, checked every
    // 30 s) would send nothing by then, so a 408 is the proxy's 500 ms setting at work.
    const reply = await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${HOST}\r\n`, 2_900);
    expect(statusLines(reply)).toEqual(["HTTP/1.1 408"]);
  });
});
