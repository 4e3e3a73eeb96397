/**
 * Request ids and trace context over real sockets, in one process: what the replica receives, what
 * the client gets back (relayed answers and the gateway's own replies alike), and the span exported
 * when tracing is configured.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ObservabilityDocument } from "../schema/observability.ts";
import { attributes, type OtlpReceiver, startOtlpReceiver } from "../test/fakes/otlp-receiver.ts";
import { type Echo, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { rawExchange, send } from "../test/support/http-client.ts";
import { type ProxyHandle, startTunedProxy } from "./index.ts";
import { DEFAULT_OBSERVE_LIMITS } from "./observe/sinks.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";
const HEX32 = /^[0-9a-f]{32}$/;

let replica: TestReplica;
let own: TestReplica;
let otlp: OtlpReceiver;
let proxy: ProxyHandle;
/** Replicas of the service scaled to zero (none until a test gives it one). */
let sleepyReplicas: string[] = [];
let onHeld: (service: string) => void = () => {};

function document(version: number, tracing: ObservabilityDocument["tracing"]): ConfigDocument {
  const doc = configDocument(version, [
    { name: "alpha", replicas: [replica.url] },
    { name: "own", replicas: [own.url] },
    { name: "llama", replicas: [replica.url], model: { name: "llama-3", format: "openai", prefix: "/v1" } },
    { name: "locked", replicas: [replica.url], auth: true },
    {
      name: "limited",
      replicas: [replica.url],
      rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 }],
    },
    { name: "empty", replicas: [] },
    { name: "dead", replicas: ["http://127.0.0.1:9"] },
    { name: "sleepy", replicas: sleepyReplicas, hold: { timeout_ms: 30_000 } },
  ]);
  return { ...doc, observability: { ...doc.observability, tracing } };
}

beforeAll(async () => {
  replica = await startReplica("a");
  // A replica with its own idea of the request id.
  own = await startReplica("own", (_req, res) => res.setHeader("x-request-id", "replica-own").end("ok"));
  otlp = await startOtlpReceiver();
  proxy = await startTunedProxy(
    { httpPort: 0, processes: 0, validatedDocuments: true, onHeldRequest: (service) => onHeld(service) },
    { settings: { observe: { ...DEFAULT_OBSERVE_LIMITS, spanDelayMs: 10 } } },
  );
  await proxy.apply(document(1, null));
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all([replica?.close(), own?.close(), otlp?.close()]);
});

const get = (service: string, headers: Record<string, string> = {}, path = "/", method = "GET") =>
  send(proxy.port, { host: `${service}.${DOMAIN}`, path, method, headers });

/** The values of a header the replica received (raw, every field of that name). */
function received(echo: Echo, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    if (echo.rawHeaders[i]!.toLowerCase() === name) out.push(echo.rawHeaders[i + 1]!);
  }
  return out;
}

describe("X-Request-Id", () => {
  it("passes a client's usable id to the replica and back, once", async () => {
    const res = await get("alpha", { "x-request-id": "client-abc" });
    expect(received(JSON.parse(res.body) as Echo, "x-request-id")).toEqual(["client-abc"]);
    expect(res.headers["x-request-id"]).toBe("client-abc");
  });

  it("makes one up when there is none or it is unusable, the same for the replica and the client", async () => {
    for (const headers of [{}, { "x-request-id": "has spaces in it" }] as Record<string, string>[]) {
      const res = await get("alpha", headers);
      const [sent] = received(JSON.parse(res.body) as Echo, "x-request-id");
      expect(sent).toMatch(HEX32);
      expect(res.headers["x-request-id"]).toBe(sent);
    }
  });

  it("replaces the replica's own id in its answer", async () => {
    const res = await get("own", { "x-request-id": "client-1" });
    expect(res.rawHeaders.filter((h) => h.toLowerCase() === "x-request-id")).toHaveLength(1);
    expect(res.headers["x-request-id"]).toBe("client-1");
  });

  it("is on every answer the gateway makes itself", async () => {
    const cases: [string, Record<string, string>, number, string?][] = [
      ["nowhere", {}, 404],
      ["locked", {}, 401],
      ["empty", {}, 503],
      ["dead", {}, 502],
      ["llama", { origin: "https://app.test", "access-control-request-method": "POST" }, 204, "OPTIONS"],
    ];
    for (const [service, headers, status, method] of cases) {
      const res = await get(service, { ...headers, "x-request-id": `id-${status}` }, "/", method);
      expect([service, res.status, res.headers["x-request-id"]]).toEqual([service, status, `id-${status}`]);
    }
    const limited = [await get("limited", { "x-request-id": "l-1" }), await get("limited", { "x-request-id": "l-2" })];
    expect(limited.map((r) => [r.status, r.headers["x-request-id"]])).toEqual([
      [200, "l-1"],
      [429, "l-2"],
    ]);
    const made = await get("nowhere");
    expect(made.headers["x-request-id"]).toMatch(HEX32);
  });

  it("stays the same for a request held until its service has a replica", async () => {
    const held = new Promise<string>((resolve) => {
      onHeld = resolve;
    });
    const answer = get("sleepy");
    expect(await held).toBe("sleepy");
    sleepyReplicas = [replica.url];
    await proxy.apply(document(2, null));
    const res = await answer;
    const [sent] = received(JSON.parse(res.body) as Echo, "x-request-id");
    expect(sent).toMatch(HEX32);
    expect(res.headers["x-request-id"]).toBe(sent);
  });

  it("is on an upgrade's refusal written on the raw socket", async () => {
    const answer = await rawExchange(
      proxy.port,
      `GET / HTTP/1.1\r\nHost: nowhere.${DOMAIN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: up-1\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(answer).toContain("\r\nx-request-id: up-1\r\n");
  });
});

describe("trace context", () => {
  it("without tracing, passes a client's traceparent and tracestate unchanged and makes none up", async () => {
    const traceparent = `00-${TRACE}-${CLIENT_SPAN}-01`;
    const echo = JSON.parse((await get("alpha", { traceparent, tracestate: "rojo=1" })).body) as Echo;
    expect(received(echo, "traceparent")).toEqual([traceparent]);
    expect(received(echo, "tracestate")).toEqual(["rojo=1"]);
    const none = JSON.parse((await get("alpha")).body) as Echo;
    expect(received(none, "traceparent")).toEqual([]);
  });

  it("with tracing, makes the gateway's span the replica's parent and exports it with the client's as its own parent", async () => {
    await proxy.apply(document(3, { endpoint: otlp.url, sample_ratio: 1 }));
    const res = await get(
      "llama",
      { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, tracestate: "rojo=1", "x-request-id": "traced-1" },
      "/v1/chat/completions",
      "POST",
    );
    const echo = JSON.parse(res.body) as Echo;
    const [traceparent] = received(echo, "traceparent");
    const [, traceId, gatewaySpan, flags] = traceparent!.split("-");
    expect([traceId, flags]).toEqual([TRACE, "01"]);
    expect(gatewaySpan).not.toBe(CLIENT_SPAN);
    expect(received(echo, "tracestate")).toEqual(["rojo=1"]);

    const [span] = await otlp.waitForSpans(1);
    expect(span).toMatchObject({
      traceId: TRACE,
      spanId: gatewaySpan,
      parentSpanId: CLIENT_SPAN,
      traceState: "rojo=1",
    });
    expect(span!.kind).toBe(2);
    expect(span!.name).toBe("chat llama-3");
    expect(attributes(span!.attributes)).toMatchObject({
      "gateplane.request_id": "traced-1",
      "http.request.method": "POST",
      "http.response.status_code": 200,
      "url.path": "/v1/chat/completions",
      "server.address": `llama.${DOMAIN}`,
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "llama-3",
    });
    expect(BigInt(span!.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span!.startTimeUnixNano));

    // No traceparent: a new trace, the gateway's span its root.
    const fresh = JSON.parse((await get("alpha", { "x-request-id": "traced-2" })).body) as Echo;
    const [, freshTrace, freshSpan] = received(fresh, "traceparent")[0]!.split("-");
    const spans = await otlp.waitForSpans(2);
    expect(spans[1]).toMatchObject({ traceId: freshTrace, spanId: freshSpan, name: "GET alpha" });
    expect(spans[1]!.parentSpanId).toBeUndefined();
  });
});
