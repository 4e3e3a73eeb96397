import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { rawExchange } from "../test/support/http-client.ts";
import { type ProxyHandle, startTunedProxy } from "./index.ts";

let a: TestReplica;
let p: ProxyHandle;
const HOST = `alpha.${DOMAIN}`;

beforeAll(async () => {
  a = await startReplica("a");
  p = await startTunedProxy(
    { httpPort: 0, processes: 0, initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url] }]) },
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

/** The replica's echo (JSON) in a raw reply, as a header name → values map. */
function echoedHeaders(reply: string): Record<string, string[]> {
  const body = reply.slice(reply.indexOf("\r\n\r\n") + 4);
  const raw = (JSON.parse(body) as { rawHeaders: string[] }).rawHeaders;
  const out: Record<string, string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    out[name] = [...(out[name] ?? []), raw[i + 1]!];
  }
  return out;
}

describe("absolute-form request targets (RFC 9112 §3.2.2)", () => {
  it("routes and forwards by the target's authority, ignoring the Host header", async () => {
    const reply = await rawExchange(
      p.port,
      `GET http://${HOST}/abs HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 200"]);
    const headers = echoedHeaders(reply);
    expect(headers.host).toEqual([HOST]);
    expect(headers["x-forwarded-host"]).toEqual([HOST]);
    expect(JSON.stringify(headers)).not.toContain("evil.example");
  });

  it("normalises the target's host for routing and forwards the same authority", async () => {
    const reply = await rawExchange(
      p.port,
      `GET http://ALPHA.${DOMAIN.toUpperCase()}./abs?q=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 200"]);
    const headers = echoedHeaders(reply);
    expect(headers.host).toEqual([`${HOST}.`]);
    expect(headers["x-forwarded-host"]).toEqual([`${HOST}.`]);
  });

  it("answers 404 for an absolute target naming an unknown host, whatever the Host header says", async () => {
    const reply = await rawExchange(
      p.port,
      `GET http://evil.example/abs HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusLines(reply)).toEqual(["HTTP/1.1 404"]);
  });
});

describe("pipelining", () => {
  // Answers follow one another with no line break between a body and the next status line.
  const answers = (reply: string) => reply.match(/HTTP\/1\.1 \d{3}(?= )/g) ?? [];

  it("answers a valid request before the 400 of a malformed one that follows it, then closes", async () => {
    const before = a.seen.length;
    const reply = await rawExchange(
      p.port,
      `GET /first HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /second HTTP/1.1\r\nHost: ${HOST}\r\nBad Header\r\n\r\n`,
    );
    expect(answers(reply)).toEqual(["HTTP/1.1 200", "HTTP/1.1 400"]);
    expect(reply).toContain('"url":"/first"');
    expect(a.seen.length).toBe(before + 1);
  });

  it("answers every valid pipelined request in order before the 400", async () => {
    const reply = await rawExchange(
      p.port,
      `GET /1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\nPOST /2 HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n\x01garbage\r\n\r\n`,
    );
    expect(answers(reply)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 400"]);
    const urls = [...reply.matchAll(/"url":"([^"]*)"/g)].map((m) => m[1]);
    expect(urls).toEqual(["/1", "/2", "/3"]);
  });
});
