/**
 * Rate limits over real sockets, in one process: 429 answers and their headers, keys, prefixes,
 * the OpenAI entrypoint, documents that keep or change a rule, and a flood of distinct addresses.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { type ProxyHandle, startTunedProxy } from "./index.ts";
import { compileRateLimits } from "./rate-limit.ts";
import { LocalGate } from "./rate-limit-gate.ts";
import { hostMs, ZoneRegistry } from "./rate-limit-store.ts";
import { parseDocument } from "./routes.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const ONE_A_MINUTE = 1 / 60;
let replica: TestReplica;
let proxy: ProxyHandle;

function services(replicaUrl: string, burst = 2): ServiceSpec[] {
  return [
    {
      name: "plain",
      replicas: [replicaUrl],
      rate_limits: [
        { prefix: "/", key: { type: "ip_address" }, rps: ONE_A_MINUTE, burst },
        { prefix: "/api/", key: { type: "header", header: "X-Api-Key" }, rps: ONE_A_MINUTE, burst: 0 },
      ],
    },
    {
      name: "llama",
      replicas: [replicaUrl],
      model: { name: "llama", format: "openai", prefix: "/v1" },
      rate_limits: [{ prefix: "/v1/chat", key: { type: "header", header: "authorization" }, rps: 1, burst: 0 }],
    },
    { name: "free", replicas: [replicaUrl] },
  ];
}

beforeAll(async () => {
  replica = await startReplica("r");
  // Time stands still: every verdict below is about requests in one instant (rates of 1/min and
  // 1/s), which a slow machine would otherwise spread over seconds and refill a bucket between.
  const frozen = hostMs();
  proxy = await startTunedProxy(
    { httpPort: 0, processes: 0, initialConfig: configDocument(1, services(replica.url)) },
    { rateLimitClock: () => frozen },
  );
});
afterAll(async () => {
  await proxy?.close();
  await replica?.close();
});

const get = (host: string, path = "/", headers: Record<string, string> = {}) =>
  send(proxy.port, { host: `${host}.${DOMAIN}`, path, headers });

describe("rate limits on direct traffic", () => {
  it("admits burst+1, then answers 429 with Retry-After and the draft RateLimit fields; not counted in stats", async () => {
    const before = replica.seen.length;
    const admitted = [await get("plain", "/a"), await get("plain", "/b"), await get("plain", "/c")];
    expect(admitted.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(admitted[0]!.headers["ratelimit-policy"]).toBe('"/";q=1;w=60;gateplane-burst=2');
    expect(admitted.map((r) => r.headers.ratelimit)).toEqual(['"/";r=2;t=59', '"/";r=1;t=118', '"/";r=0;t=177']);
    const refused = await get("plain", "/d");
    expect(refused.status).toBe(429);
    expect(refused.headers["content-type"]).toContain("text/plain");
    expect(refused.body).toMatch(/^rate limit exceeded; retry in \d+s\n$/);
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBe(59);
    expect(refused.headers.ratelimit).toBe(`"/";r=0;t=${retryAfter}`);
    expect(refused.headers["ratelimit-policy"]).toBe('"/";q=1;w=60;gateplane-burst=2');
    expect(replica.seen.length - before).toBe(3);
    const stats = await proxy.stats();
    expect(stats.find((s) => s.service === "plain")!.windows["30"].requests).toBe(3);
    // Other services are not limited by this one's zone.
    expect((await get("free")).status).toBe(200);
  });

  it("upgrade requests are limited too (nginx applies limit_req to WebSocket locations)", async () => {
    const refused = await get("plain", "/ws", { connection: "upgrade", upgrade: "websocket" });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers.ratelimit).toMatch(/^"\/";r=0;t=\d+$/);
  });

  it("a longer prefix has its own zone; header keys are counted apart and a request without the header is not limited", async () => {
    const key = (k: string) => ({ "x-api-key": k });
    expect((await get("plain", "/api/x", key("alice"))).status).toBe(200);
    expect((await get("plain", "/api/x", key("alice"))).status).toBe(429);
    expect((await get("plain", "/api/y", key("bob"))).status).toBe(200);
    expect((await get("plain", "/api//x", key("bob"))).status).toBe(429);
    for (let i = 0; i < 3; i++) expect((await get("plain", "/api/z")).status).toBe(200);
  });

  it("model services answer in OpenAI's error shape, with CORS; the entrypoint applies the rule to the forwarded path", async () => {
    const auth = { authorization: "Bearer one" };
    expect((await get("llama", "/v1/chat/completions", auth)).status).toBe(200);
    const refused = await get("llama", "/v1/chat/completions", auth);
    expect(refused.status).toBe(429);
    expect(refused.headers["access-control-allow-origin"]).toBe("*");
    expect(JSON.parse(refused.body)).toEqual({
      error: {
        message: expect.stringMatching(/^rate limit exceeded/),
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    });
    // The entrypoint forwards to /v1/chat/completions: the same zone, the same key.
    const body = JSON.stringify({ model: "llama", messages: [] });
    const post = (path: string, token: string) =>
      send(proxy.port, {
        host: `gateway.${DOMAIN}`,
        path,
        method: "POST",
        headers: { "content-type": "application/json", authorization: token },
        body,
      });
    const viaEntrypoint = await post("/v1/chat/completions", "Bearer one");
    expect(viaEntrypoint.status).toBe(429);
    expect(JSON.parse(viaEntrypoint.body).error.code).toBe("rate_limit_exceeded");
    expect(viaEntrypoint.headers["retry-after"]).toBe("1");
    // /v1/completions is outside the /v1/chat prefix.
    expect((await post("/v1/completions", "Bearer one")).status).toBe(200);
    const other = await post("/v1/chat/completions", "Bearer two");
    expect(other.status).toBe(200);
    expect(JSON.parse(other.body).url).toBe("/v1/chat/completions");
    expect((await post("/v1/chat/completions", "Bearer two")).status).toBe(429);
  });

  it("a document that keeps a rule keeps its buckets; a changed rule starts afresh", async () => {
    await proxy.apply(configDocument(2, services(replica.url)));
    expect((await get("plain", "/again")).status).toBe(429);
    await proxy.apply(configDocument(3, services(replica.url, 3)));
    expect((await get("plain", "/again")).status).toBe(200);
  });

  it("refuses a document with a bad rate limit, naming the field, and keeps the old one", async () => {
    const bad = configDocument(4, [
      {
        name: "plain",
        replicas: [replica.url],
        rate_limits: [{ prefix: "nope", key: { type: "ip_address" }, rps: 1, burst: 0 }],
      },
    ]);
    await expect(proxy.apply(bad)).rejects.toThrow(
      "services[0].rate_limits[0].prefix: expected a path starting with /",
    );
    expect((await get("plain", "/again")).status).toBe(200);
  });
});

describe("a flood of distinct client addresses", () => {
  it("keeps each zone at its key cap while a legitimate client stays limited correctly", async () => {
    const registry = new ZoneRegistry(20);
    const server = new ProxyServer({ ...DEFAULT_SERVER_SETTINGS, rateLimitKeys: 20 }, () => {}, {
      rateLimits: new LocalGate(registry),
    });
    const doc = parseDocument(
      configDocument(1, [
        {
          name: "plain",
          replicas: [replica.url],
          rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: ONE_A_MINUTE, burst: 0 }],
        },
      ]),
    );
    server.apply(doc);
    const port = await server.listen({ host: "127.0.0.1", port: 0 });
    try {
      // Every 127.0.0.0/8 address reaches loopback: each request comes from its own address.
      const from = (address: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            { host: "127.0.0.1", port, localAddress: address, agent: false, headers: { host: `plain.${DOMAIN}` } },
            (res) => {
              res.resume();
              res.on("end", () => resolve(res.statusCode ?? 0));
            },
          );
          req.on("error", reject);
          req.end();
        });
      const zone = registry.zone(compileRateLimits(doc.services[0]!)[0]!.zone.id)!;
      expect(await from("127.0.0.1")).toBe(200);
      const flood: number[] = [];
      for (let i = 0; i < 120; i++) {
        flood.push(await from(`127.0.${1 + (i >> 6)}.${2 + (i & 63)}`));
        expect(zone.size).toBeLessThanOrEqual(20);
        // The legitimate client is seen often enough to stay among the recent keys: still limited.
        if (i % 10 === 0) expect(await from("127.0.0.1")).toBe(429);
      }
      expect(flood.every((s) => s === 200)).toBe(true);
      expect(zone.size).toBe(20);
    } finally {
      await server.close();
    }
  });
});
