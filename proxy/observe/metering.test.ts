import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY } from "../../schema/observability.ts";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../../test/fakes/model-server.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { ProxyServer } from "../server.ts";
import { DEFAULT_SERVER_SETTINGS } from "../settings.ts";
import type { ExchangeRecord } from "./exchange-record.ts";

// The proxy in this process (a ProxyServer), so the test reads every request's record from a sink of
// its own; the fake model servers are vLLM-like (`test/fakes/model-server.ts`).
const ID = "abcdefABCDEF";
const SECRET = "0123456789abcdefghijklmnopqrstuv";
const TOKEN = `gps_${ID}_${SECRET}`;
const MODEL = { format: "openai" as const, prefix: "/v1" };

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
let server: ProxyServer;
let port: number;
let vllm: FakeModelServer;
let counting: FakeModelServer;
let silent: FakeModelServer;
/** A replica whose stream is gzip-compressed, and has a usage chunk. */
let gzipped: Server;
const GZIPPED_STREAM = gzipSync(
  `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\ndata: [DONE]\n\n`,
);
const records: ExchangeRecord[] = [];
const waiting: (() => void)[] = [];

/** The first record (in order of arrival) `match` accepts, once it has come. */
async function recordOf(match: (r: ExchangeRecord) => boolean): Promise<ExchangeRecord> {
  for (;;) {
    const found = records.find(match);
    if (found) {
      records.splice(records.indexOf(found), 1);
      return found;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
}

/** With `usage: include` on one service and `observability.metrics.public`. */
function document(version: number): ConfigDocument {
  const doc = configDocument(version, [
    { name: "chat", replicas: [{ id: "v1", url: vllm.url }], model: { name: "llama", ...MODEL } },
    { name: "exact", replicas: [{ id: "c1", url: counting.url }], model: { name: "qwen", ...MODEL } },
    { name: "quiet", replicas: [{ id: "s1", url: silent.url }], model: { name: "tiny", ...MODEL } },
    { name: "locked", auth: true, replicas: [{ id: "v1", url: vllm.url }] },
    {
      name: "packed",
      replicas: [{ id: "z1", url: `http://127.0.0.1:${(gzipped.address() as AddressInfo).port}` }],
      usage: "include",
    },
    { name: "empty", replicas: [] },
    {
      name: "limited",
      replicas: [{ id: "v1", url: vllm.url }],
      rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 }],
    },
  ]);
  doc.services[1] = { ...doc.services[1]!, usage: "include" };
  doc.service_tokens = [{ id: ID, secret_sha256: createHash("sha256").update(SECRET).digest("hex") }];
  return { ...doc, observability: { metrics: { public: true }, access_log: null, tracing: null } };
}

beforeAll(async () => {
  vllm = await startFakeModelServer("vllm", { ttftMs: 50, itlMs: 5 });
  counting = await startFakeModelServer("counting", { promptTokens: 9 });
  silent = await startFakeModelServer("silent", { usage: "never" });
  gzipped = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" });
    res.end(GZIPPED_STREAM);
  });
  await new Promise<void>((resolve) => gzipped.listen(0, "127.0.0.1", resolve));
  server = new ProxyServer(DEFAULT_SERVER_SETTINGS, () => {});
  server.sinks.push((r) => {
    records.push(r);
    for (const wake of waiting.splice(0)) wake();
  });
  server.apply(document(1));
  port = await server.listen({ host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await server?.close();
  for (const s of [vllm, counting, silent]) await s?.close();
  gzipped?.closeAllConnections();
  await new Promise((resolve) => gzipped?.close(resolve));
});

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], ...extra });
const post = (host: string, path: string, body: string, headers: Record<string, string> = {}) =>
  send(port, { host, path, method: "POST", body, headers: { "content-type": "application/json", ...headers } });

describe("metering through the proxy", () => {
  it("measures a stream with usage: first token, gaps, exact tokens, and TPOT from them", async () => {
    const reply = await post(
      `chat.${DOMAIN}`,
      "/v1/chat/completions?x=1",
      chatBody({ stream: true, stream_options: { include_usage: true } }),
      { "x-request-id": "meter-1", traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
    );
    expect(reply.status).toBe(200);
    // The client asked for the usage chunk: it gets it.
    expect(reply.body).toContain('"choices":[],"usage"');
    const r = await recordOf((r) => r.service === "chat");
    expect(r).toMatchObject({
      method: "POST",
      host: `chat.${DOMAIN}`,
      path: "/v1/chat/completions",
      service: "chat",
      project: "main",
      model: "llama",
      replica: "v1",
      status: 200,
      retries: 0,
      rateLimit: null,
      inputTokens: 1,
      outputTokens: TOKENS.length,
      tokensEstimated: false,
      incomplete: false,
      // From the request's head: the client's id, and its trace context passed on (no tracing configured).
      requestId: "meter-1",
      trace: { traceId: TRACE, spanId: CLIENT_SPAN, parentSpanId: null, sampled: false, traceState: "" },
      bytesIn: Buffer.byteLength(chatBody({ stream: true, stream_options: { include_usage: true } })),
      bytesOut: Buffer.byteLength(reply.body),
    });
    // The replica waited 50 ms before its first token: the proxy cannot have seen it sooner.
    expect(r.ttft).toBeGreaterThanOrEqual(0.045);
    expect(r.ttft!).toBeLessThanOrEqual(r.duration);
    expect(r.itl).toHaveLength(TOKENS.length - 1);
    expect(r.tpot).toBeCloseTo((r.duration - r.ttft!) / (TOKENS.length - 1), 12);
  });

  it("estimates output tokens as content events when the stream carries no usage, and says so", async () => {
    await post(`chat.${DOMAIN}`, "/v1/chat/completions", chatBody({ stream: true }));
    const r = await recordOf((r) => r.service === "chat");
    expect([r.inputTokens, r.outputTokens, r.tokensEstimated, r.itl.length]).toEqual([null, TOKENS.length, true, 3]);
  });

  it("usage: include asks a stream for its usage and withholds the chunk from the client", async () => {
    const reply = await post(`exact.${DOMAIN}`, "/v1/chat/completions", chatBody({ stream: true }));
    expect(reply.status).toBe(200);
    expect(reply.body).not.toContain('"usage"');
    expect(reply.body.match(/^data: /gm)).toHaveLength(TOKENS.length + 3); // role+first, tokens, finish, [DONE]
    expect(reply.body.endsWith("data: [DONE]\n\n")).toBe(true);
    const seen = JSON.parse(counting.requests.at(-1)!.body);
    expect(seen.stream_options).toEqual({ include_usage: true });
    const r = await recordOf((r) => r.service === "exact");
    expect([r.inputTokens, r.outputTokens, r.tokensEstimated, r.bytesOut]).toEqual([
      9,
      TOKENS.length,
      false,
      Buffer.byteLength(reply.body),
    ]);
  });

  it("usage: include is invisible to the openai client, which sees exactly the chunks it asked for", async () => {
    // The gateway's bare address serves the entrypoint: no name resolution needed.
    const client = new OpenAI({ apiKey: "unused", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "qwen", messages: [], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((c) => c.choices.length)).toEqual(Array(TOKENS.length + 2).fill(1));
    expect(chunks.some((c) => c.usage)).toBe(false);
    const r = await recordOf((r) => r.service === "exact");
    expect([r.host, r.inputTokens, r.outputTokens, r.tokensEstimated]).toEqual(["127.0.0.1", 9, TOKENS.length, false]);
  });

  it("usage: include leaves a request that does not stream, or chose its stream_options, as it was", async () => {
    const whole = await post(`exact.${DOMAIN}`, "/v1/chat/completions", chatBody({ stream: false }));
    expect(whole.status).toBe(200);
    expect(counting.requests.at(-1)!.body).toBe(chatBody({ stream: false }));
    const chosen = chatBody({ stream: true, stream_options: { include_usage: false } });
    const reply = await post(`exact.${DOMAIN}`, "/v1/chat/completions", chosen);
    expect(counting.requests.at(-1)!.body).toBe(chosen);
    expect(reply.body).not.toContain('"usage"');
    const records = [await recordOf((r) => r.service === "exact"), await recordOf((r) => r.service === "exact")];
    expect(records.map((r) => [r.outputTokens, r.tokensEstimated])).toEqual([
      [TOKENS.length, false],
      [TOKENS.length, true],
    ]);
  });

  it("relays a compressed stream unread and untouched, even with usage: include", async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/v1/chat/completions",
          method: "POST",
          setHost: false,
          headers: { host: `packed.${DOMAIN}` },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(Buffer.concat(chunks)));
        },
      );
      req.on("error", reject);
      req.end(chatBody({ stream: true }));
    });
    expect(gunzipSync(reply).toString()).toBe(gunzipSync(GZIPPED_STREAM).toString());
    const r = await recordOf((r) => r.service === "packed");
    expect([r.status, r.ttft, r.outputTokens, r.itl]).toEqual([200, null, null, []]);
  });

  it("reads a whole JSON answer's usage, and SGLang's native stream, exactly", async () => {
    await post(`exact.${DOMAIN}`, "/v1/completions", JSON.stringify({ model: "m", prompt: "x" }));
    await post(`exact.${DOMAIN}`, "/generate", JSON.stringify({ text: "x", stream: true }));
    const whole = await recordOf((r) => r.service === "exact" && r.path === "/v1/completions");
    expect([whole.inputTokens, whole.outputTokens, whole.tokensEstimated, whole.tpot]).toEqual([1, 2, false, null]);
    expect(whole.ttft).not.toBeNull();
    const native = await recordOf((r) => r.service === "exact" && r.path === "/generate");
    expect([native.inputTokens, native.outputTokens, native.tokensEstimated, native.itl.length]).toEqual([
      9,
      TOKENS.length,
      false,
      TOKENS.length - 1,
    ]);
  });

  it("serves the OpenAI entrypoint's requests under their service and model", async () => {
    const reply = await post(`gateway.${DOMAIN}`, "/v1/chat/completions", chatBody({ model: "tiny", stream: true }));
    expect(reply.status).toBe(200);
    const r = await recordOf((r) => r.service === "quiet");
    expect(r).toMatchObject({ host: `gateway.${DOMAIN}`, path: "/v1/chat/completions", model: "tiny", replica: "s1" });
    expect([r.outputTokens, r.tokensEstimated]).toEqual([TOKENS.length, true]);
  });

  it("records what the gateway answered itself: unknown host, auth, no replicas, rate limit", async () => {
    const notFound = await send(port, { host: "nobody.example.test", path: "/x?secret=1" });
    expect(notFound.status).toBe(404);
    expect((await send(port, { host: `locked.${DOMAIN}`, headers: { "x-request-id": "locked-1" } })).status).toBe(401);
    expect((await send(port, { host: `empty.${DOMAIN}` })).status).toBe(503);
    expect((await post(`limited.${DOMAIN}`, "/v1/completions", chatBody())).status).toBe(200);
    expect((await post(`limited.${DOMAIN}`, "/v1/completions", chatBody())).status).toBe(429);
    const unknown = await recordOf((r) => r.host === "nobody.example.test");
    expect(unknown).toMatchObject({ service: null, replica: null, status: 404, path: "/x", ttft: null });
    expect(unknown.bytesOut).toBeGreaterThan(0);
    // The gateway's own replies carry the request id they were answered with (made up, or the client's).
    expect(unknown.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(unknown.requestId).toBe(notFound.headers["x-request-id"]);
    expect(await recordOf((r) => r.service === "locked")).toMatchObject({
      status: 401,
      replica: null,
      requestId: "locked-1",
    });
    expect(await recordOf((r) => r.service === "empty")).toMatchObject({ status: 503, replica: null });
    expect(await recordOf((r) => r.service === "limited")).toMatchObject({
      status: 200,
      rateLimit: "allowed",
      replica: "v1",
    });
    expect(await recordOf((r) => r.service === "limited")).toMatchObject({ status: 429, rateLimit: "refused" });
  });

  it("marks a stream the client left mid-way as incomplete", async () => {
    vllm.gated = true;
    try {
      await new Promise<void>((resolve) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            path: "/v1/chat/completions",
            method: "POST",
            setHost: false,
            headers: { host: `chat.${DOMAIN}` },
          },
          (res) => {
            res.once("data", () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on("error", () => {});
        req.on("close", () => resolve());
        req.end(chatBody({ stream: true }));
      });
      const r = await recordOf((r) => r.service === "chat");
      expect([r.status, r.incomplete]).toEqual([200, true]);
    } finally {
      vllm.gated = false;
    }
  });

  it("answers GET /metrics on the gateway's address only with a service token, never on a service's host", async () => {
    const bare = (headers: Record<string, string> = {}) =>
      send(port, { host: `127.0.0.1:${port}`, path: "/metrics", headers });
    expect((await bare()).status).toBe(401);
    expect((await bare({ authorization: "Bearer gpt_abcdefABCDEF_0123456789abcdefghijklmnopqrstuv" })).status).toBe(
      403,
    );
    expect((await bare({ authorization: `Bearer gps_${ID}_${SECRET.replace("0", "1")}` })).status).toBe(403);
    const ok = await bare({ authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(ok.body).toContain('gen_ai_server_time_to_first_token_seconds_bucket{service="chat",replica="v1"');
    const entrypoint = await send(port, {
      host: `gateway.${DOMAIN}`,
      path: "/metrics",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(entrypoint.status).toBe(200);
    const onService = await send(port, {
      host: `chat.${DOMAIN}`,
      path: "/metrics",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    // The replica's answer (this fake exports no engine metrics: its own 404): a service owns every
    // path of its host.
    expect([onService.status, onService.body]).toEqual([404, "Not Found"]);
    const check = spawnSync("promtool", ["check", "metrics"], { input: ok.body, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(check.status).toBe(0);

    // Not public: the gateway's address has no /metrics.
    server.apply({ ...document(2), observability: DEFAULT_OBSERVABILITY });
    expect((await bare({ authorization: `Bearer ${TOKEN}` })).status).toBe(404);
    server.apply(document(3));
  });
});
