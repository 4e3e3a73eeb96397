import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type Echo, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { type Reply, send } from "../test/support/http-client.ts";
import { until as waitUntil } from "../test/support/until.ts";
import { ConfigRejectedError, startTunedProxy } from "./index.ts";
import { parseDocument } from "./routes.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS, type ServerSettings } from "./settings.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const COLD = `cold.${DOMAIN}`;

async function replica(name: string): Promise<TestReplica> {
  const r = await startReplica(name);
  cleanups.push(() => r.close());
  return r;
}

/** One process serving `services`, with the held-request signals it made. */
async function proxyWith(services: ServiceSpec[], settings: Partial<ServerSettings> = {}) {
  const signals: string[] = [];
  const server = new ProxyServer({ ...DEFAULT_SERVER_SETTINGS, ...settings }, () => {}, {
    onHold: (s) => signals.push(s),
  });
  server.apply(configDocument(1, services));
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => server.close());
  return { server, port, signals };
}

const until = (what: string, check: () => boolean, ms = 10_000) => waitUntil(what, check, ms, 10);

/** Tracks whether a request has been answered yet. */
function pending(promise: Promise<Reply>) {
  const state = { done: false, reply: promise };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

const cold = (extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name: "cold",
  replicas: [],
  hold: { timeout_ms: 20_000 },
  ...extra,
});

describe("scale from zero: held requests", () => {
  it("holds requests (bodies included) for a service without replicas, signals once, forwards when one appears", async () => {
    const { server, port, signals } = await proxyWith([cold()]);
    const upload = Buffer.alloc(512 * 1024, "x");
    const get = pending(send(port, { host: COLD, path: "/a?q=1" }));
    const post = pending(send(port, { host: COLD, path: "/b", method: "POST", body: upload }));
    await until("two held", () => server.held("cold") === 2);
    expect(signals).toEqual(["cold"]);
    expect(get.done || post.done).toBe(false);

    const r = await replica("r1");
    const doc = configDocument(2, [cold({ replicas: [r.url] })]);
    server.apply(doc);
    expect(server.held()).toBe(0);
    const [a, b] = await Promise.all([get.reply, post.reply]);
    expect(a.status).toBe(200);
    expect((JSON.parse(a.body) as Echo).url).toBe("/a?q=1");
    expect(b.status).toBe(200);
    const echoed = JSON.parse(b.body) as Echo;
    expect(echoed.url).toBe("/b");
    expect(echoed.body.length).toBe(upload.length);
    // Forwarded through the normal path: counted in the stats.
    const counted = () => server.stats().find((s) => s.service === "cold")?.windows["60"].requests;
    await until("counted", () => counted() === 2);
  });

  it("answers 503 with Retry-After when no replica registers within the hold timeout", async () => {
    const { server, port, signals } = await proxyWith([cold({ hold: { timeout_ms: 300 } })]);
    const started = performance.now();
    const res = await send(port, { host: COLD });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(JSON.parse(res.body)).toEqual({ error: "service cold has no replicas (none registered within 0.3 s)" });
    expect(signals).toEqual(["cold"]);
    expect(server.held()).toBe(0);
  });

  it("bounds the queue per service and in total: beyond, 503 at once", async () => {
    const hold = { perService: 2, total: 3, signalIntervalMs: 5_000 };
    const { server, port } = await proxyWith([cold(), cold({ name: "warm", host: `warm.${DOMAIN}` })], { hold });
    const held = [pending(send(port, { host: COLD })), pending(send(port, { host: COLD }))];
    await until("two held", () => server.held("cold") === 2);
    const third = await send(port, { host: COLD });
    expect(third.status).toBe(503);
    expect(third.headers["retry-after"]).toBe("5");
    expect(JSON.parse(third.body).error).toBe("service cold has no replicas and too many requests wait for one");
    held.push(pending(send(port, { host: `warm.${DOMAIN}` })));
    await until("three held", () => server.held() === 3);
    const overall = await send(port, { host: `warm.${DOMAIN}` });
    expect(overall.status).toBe(503);

    const r = await replica("r1");
    server.apply(
      configDocument(2, [
        cold({ replicas: [r.url] }),
        cold({ name: "warm", host: `warm.${DOMAIN}`, replicas: [r.url] }),
      ]),
    );
    const replies = await Promise.all(held.map((h) => h.reply));
    expect(replies.map((x) => x.status)).toEqual([200, 200, 200]);
  });

  it("drops a client that goes away while held; it never reaches the replica", async () => {
    const { server, port } = await proxyWith([cold()]);
    const req = request({ host: "127.0.0.1", port, path: "/gone", headers: { host: COLD }, agent: false });
    req.on("error", () => {});
    req.end();
    await until("held", () => server.held("cold") === 1);
    req.destroy();
    await until("dropped", () => server.held("cold") === 0);
    const r = await replica("r1");
    server.apply(configDocument(2, [cold({ replicas: [r.url] })]));
    const after = await send(port, { host: COLD, path: "/after" });
    expect(after.status).toBe(200);
    expect(r.seen.map((s) => s.url)).toEqual(["/after"]);
  });

  it("does not hold services without hold, nor requests refused before routing", async () => {
    const { server, port, signals } = await proxyWith([
      { name: "plain", replicas: [] },
      cold({ auth: true, name: "guarded", host: `guarded.${DOMAIN}` }),
      cold({ client_max_body_size: 10 }),
    ]);
    const plain = await send(port, { host: `plain.${DOMAIN}` });
    expect(plain.status).toBe(503);
    expect(JSON.parse(plain.body).error).toBe("service plain has no replicas");
    // No token: refused before anything waits or asks for a replica.
    expect((await send(port, { host: `guarded.${DOMAIN}` })).status).toBe(401);
    expect((await send(port, { host: COLD, method: "POST", body: "x".repeat(11) })).status).toBe(413);
    expect(signals).toEqual([]);
    expect(server.held()).toBe(0);
  });

  it("routes held requests again under the new document: a removed service is 404", async () => {
    const { server, port } = await proxyWith([cold()]);
    const held = pending(send(port, { host: COLD }));
    await until("held", () => server.held() === 1);
    server.apply(configDocument(2, []));
    expect((await held.reply).status).toBe(404);
  });

  it("answers held requests with 503 when the proxy closes", async () => {
    const { server, port } = await proxyWith([cold()]);
    const held = pending(send(port, { host: COLD }));
    await until("held", () => server.held() === 1);
    await server.close();
    const res = await held.reply;
    expect(res.status).toBe(503);
    expect(res.headers.connection).toBe("close");
  });

  it("holds OpenAI entrypoint requests for a model service scaled to zero", async () => {
    const model = { name: "meta/llama-3", format: "openai" as const, prefix: "/v1" };
    const { server, port, signals } = await proxyWith([cold({ model })]);
    const body = JSON.stringify({ model: "meta/llama-3", messages: [{ role: "user", content: "hi" }] });
    const call = pending(
      send(port, {
        host: `gateway.${DOMAIN}`,
        path: "/v1/chat/completions",
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
    await until("held", () => server.held("cold") === 1);
    expect(signals).toEqual(["cold"]);
    const r = await replica("r1");
    server.apply(configDocument(2, [cold({ model, replicas: [r.url] })]));
    const res = await call.reply;
    expect(res.status).toBe(200);
    const echoed = JSON.parse(res.body) as Echo;
    expect(echoed).toMatchObject({ url: "/v1/chat/completions", body });
  });
});

describe("the document's hold", () => {
  it("is optional (older control planes) and must be a positive number of milliseconds", () => {
    const doc = configDocument(1, [{ name: "plain", replicas: [] }]);
    const { hold: _, ...older } = doc.services[0]!;
    expect(parseDocument({ ...doc, services: [older] }).services[0]!.hold).toBeNull();
    expect(() => parseDocument(configDocument(1, [cold({ hold: { timeout_ms: 0 } })]))).toThrow(ConfigRejectedError);
    expect(() => parseDocument(configDocument(1, [cold({ hold: { timeout_ms: 2 ** 31 } })]))).toThrow(
      /services\[0\]\.hold\.timeout_ms/,
    );
  });
});

describe("scale from zero in worker mode", () => {
  it("signals through the parent and forwards once every worker has the new document", async () => {
    const signals: string[] = [];
    const proxy = await startTunedProxy(
      {
        httpPort: 0,
        processes: 2,
        initialConfig: configDocument(1, [cold()]),
        onHeldRequest: (s) => signals.push(s),
      },
      {},
    );
    cleanups.push(() => proxy.close());
    const held = pending(send(proxy.port, { host: COLD, path: "/w" }));
    await until("signal", () => signals.length > 0, 20_000);
    expect(signals[0]).toBe("cold");
    expect(held.done).toBe(false);
    const r = await replica("r1");
    await proxy.apply(configDocument(2, [cold({ replicas: [r.url] })]));
    const res = await held.reply;
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as Echo).url).toBe("/w");
  });

  it("rejects an onHeldRequest that is not a function, naming the option", async () => {
    await expect(startTunedProxy({ httpPort: 0, processes: 0, onHeldRequest: "yes" as never }, {})).rejects.toThrow(
      /onHeldRequest/,
    );
  });
});
