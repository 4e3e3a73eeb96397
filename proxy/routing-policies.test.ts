/**
 * The built-in policies behind real sockets: cache_aware stickiness (direct traffic and the OpenAI
 * entrypoint), prefix_load reading the body's text too, in-flight accounting back to 0 after every way an exchange ends, and round robin
 * around an ejected replica.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { CACHE_AWARE_DEFAULTS } from "../schema/router.ts";
import { endings, startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN, type ServiceSpec } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until as waitUntil } from "../test/support/until.ts";
import { ProxyServer } from "./server.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";

const HOST = `llm.${DOMAIN}`;
const CACHE_AWARE = { type: "sglang" as const, policy: "cache_aware" as const, ...CACHE_AWARE_DEFAULTS };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Replicas that answer with their name once the body is read; a body containing "HOLD" waits for `release`. */
async function replicas(n: number) {
  let waiting: (() => void)[] = [];
  const bodies: Record<string, string[]> = {};
  const list: TestReplica[] = [];
  for (let i = 0; i < n; i++) {
    const name = `r${i}`;
    bodies[name] = [];
    const r = await startReplica(name, (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        bodies[name]!.push(body);
        const answer = () => res.end(JSON.stringify({ replica: name }));
        if (body.includes("HOLD")) waiting.push(answer);
        else answer();
      });
    });
    list.push(r);
    cleanups.push(() => r.close());
  }
  return {
    list,
    bodies,
    release: () => {
      for (const w of waiting.splice(0)) w();
      waiting = [];
    },
  };
}

async function proxyFor(services: ServiceSpec[]) {
  const server = new ProxyServer({ ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000 }, () => {});
  server.apply(configDocument(1, services));
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => server.close());
  const inFlight = () => server.replicas().map((r) => r.inFlight);
  return { server, port, inFlight };
}

const chat = (system: string, question: string) =>
  JSON.stringify({
    model: "llama",
    messages: [
      { role: "system", content: system },
      { role: "user", content: question },
    ],
  });
const SYSTEM_A = `You are agent A. ${"Policy text for A. ".repeat(40)}`;
const SYSTEM_B = `You are agent B. ${"Rules that only B follows. ".repeat(40)}`;
const replicaOf = (body: string) => (JSON.parse(body) as { replica: string }).replica;
const until = (check: () => boolean) => waitUntil("the condition", check, 2_000, 10);

describe("cache_aware in the proxy", () => {
  it("keeps requests that share a prefix on one replica and spreads new prefixes by load", async () => {
    const fleet = await replicas(3);
    const { port, inFlight } = await proxyFor([
      { name: "llm", replicas: fleet.list.map((r) => r.url), router: CACHE_AWARE },
    ]);
    const post = (body: string, headers: Record<string, string> = {}) =>
      send(port, { host: HOST, method: "POST", path: "/v1/chat/completions", body, headers });
    // A held request of prefix A keeps its replica busy, so prefix B (a miss) goes to the least loaded.
    const heldA = post(chat(SYSTEM_A, "HOLD first question"));
    await until(() => inFlight().some((n) => n === 1));
    const b1 = replicaOf((await post(chat(SYSTEM_B, "first question for B"))).body);
    const a2 = post(chat(SYSTEM_A, "HOLD second question"));
    await until(() => inFlight().reduce((x, y) => x + y) === 2);
    const b2 = replicaOf((await post(chat(SYSTEM_B, "another question for B"))).body);
    // Chunked bodies are read whole too.
    const b3 = replicaOf((await post(chat(SYSTEM_B, "a third one"), { "transfer-encoding": "chunked" })).body);
    fleet.release();
    const [a1, a2r] = [replicaOf((await heldA).body), replicaOf((await a2).body)];
    expect(a1).toBe(a2r);
    expect(b1).not.toBe(a1);
    expect([b2, b3]).toEqual([b1, b1]);
    // The replicas got the bytes the client sent.
    expect(fleet.bodies[b1]).toContain(chat(SYSTEM_B, "a third one"));
    expect(inFlight()).toEqual([0, 0, 0]);
  });

  it("routes on the text of requests through the OpenAI entrypoint", async () => {
    const fleet = await replicas(2);
    const { port, inFlight } = await proxyFor([
      {
        name: "llm",
        replicas: fleet.list.map((r) => r.url),
        router: CACHE_AWARE,
        model: { name: "llama", format: "openai", prefix: "/v1" },
      },
    ]);
    const post = (body: string) =>
      send(port, { host: `gateway.${DOMAIN}`, method: "POST", path: "/v1/chat/completions", body });
    // Both replicas busy with one request each (A, then B by load); B's next questions follow B's prefix.
    const heldA = post(chat(SYSTEM_A, "HOLD"));
    await until(() => inFlight().includes(1));
    const heldB = post(chat(SYSTEM_B, "HOLD q1"));
    await until(() => inFlight().every((n) => n === 1));
    const seen = new Set<string>();
    for (const q of ["q2", "q3", "q4"]) seen.add(replicaOf((await post(chat(SYSTEM_B, q))).body));
    fleet.release();
    const a = replicaOf((await heldA).body);
    const b = replicaOf((await heldB).body);
    expect(a).not.toBe(b);
    // Without the text every one of these would be a tie on load, hence a random replica.
    expect([...seen]).toEqual([b]);
  });

  it("refuses a chunked body past client_max_body_size with 413", async () => {
    const fleet = await replicas(1);
    const { port, inFlight } = await proxyFor([
      { name: "llm", replicas: [fleet.list[0]!.url], router: CACHE_AWARE, client_max_body_size: 1000 },
    ]);
    const res = await send(port, {
      host: HOST,
      method: "POST",
      path: "/v1/completions",
      body: JSON.stringify({ prompt: "x".repeat(2000) }),
      headers: { "transfer-encoding": "chunked" },
    });
    expect(res.status).toBe(413);
    expect(fleet.bodies.r0).toEqual([]);
    expect(inFlight()).toEqual([0]);
  });
});

describe("prefix_load in the proxy", () => {
  it("reads the body's text: a prefix follows its replica while a new one goes to the idle replica", async () => {
    const fleet = await replicas(2);
    const { port, inFlight } = await proxyFor([
      { name: "llm", replicas: fleet.list.map((r) => r.url), router: { type: "sglang", policy: "prefix_load" } },
    ]);
    const post = (body: string, headers: Record<string, string> = {}) =>
      send(port, { host: HOST, method: "POST", path: "/v1/chat/completions", body, headers });
    const heldA = post(chat(SYSTEM_A, "HOLD first question"));
    await until(() => inFlight().includes(1));
    // B is held nowhere: the replica without A's request is cheaper by one request of load.
    const b1 = replicaOf((await post(chat(SYSTEM_B, "first question for B"))).body);
    // A held request of B's own prefix: B's replica has load 1 but holds ~1,000 characters.
    const heldB = post(chat(SYSTEM_B, "HOLD second question for B"));
    await until(() => inFlight().every((n) => n === 1));
    const b3 = replicaOf((await post(chat(SYSTEM_B, "a third one"), { "transfer-encoding": "chunked" })).body);
    fleet.release();
    const a1 = replicaOf((await heldA).body);
    expect(b1).not.toBe(a1);
    expect([replicaOf((await heldB).body), b3]).toEqual([b1, b1]);
    expect(fleet.bodies[b1]).toContain(chat(SYSTEM_B, "a third one"));
    expect(inFlight()).toEqual([0, 0]);
  });
});

describe("in-flight accounting", () => {
  it("returns to 0 after completions, replica errors, client aborts and data: [DONE]", async () => {
    const sse = endings(2_000);
    const r = await startReplica("sse", sse.handler);
    cleanups.push(() => r.close());
    const { port, inFlight } = await proxyFor([
      { name: "llm", replicas: [r.url], router: { type: "sglang", policy: "power_of_two" } },
    ]);
    expect((await send(port, { host: HOST, path: "/v1/ok" })).status).toBe(200);
    expect((await send(port, { host: HOST, path: "/v1/error" })).status).toBe(500);
    expect(inFlight()).toEqual([0]);
    await send(port, { host: HOST, path: "/v1/broken" }).catch(() => null);
    await until(() => inFlight()[0] === 0);
    // Client abort while the replica thinks.
    await new Promise<void>((resolve) => {
      const req = request({ host: "127.0.0.1", port, path: "/v1/slow", setHost: false, headers: { host: HOST } });
      req.on("error", () => resolve());
      req.end();
      setTimeout(() => req.destroy(), 100);
    });
    await until(() => inFlight()[0] === 0);
    // SSE: released at [DONE] while the stream is still open, and not released twice when it ends.
    const chunks: string[] = [];
    const streamed = new Promise<void>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path: "/v1/sse", setHost: false, headers: { host: HOST } },
        (res) => {
          res.on("data", (c: Buffer) => chunks.push(c.toString()));
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end();
    });
    await until(() => chunks.length > 0);
    expect(inFlight()).toEqual([1]);
    sse.done();
    await until(() => chunks.join("").includes("data: [DONE]"));
    await until(() => inFlight()[0] === 0);
    sse.release();
    await streamed;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inFlight()).toEqual([0]);
  });
});

describe("round robin with an ejected replica", () => {
  it("skips the replica that failed and alternates over the rest", async () => {
    const fleet = await replicas(2);
    const dead = await startReplica("dead");
    await dead.close();
    const { port, server } = await proxyFor([
      { name: "llm", replicas: [fleet.list[0]!.url, dead.url, fleet.list[1]!.url] },
    ]);
    const served: string[] = [];
    for (let i = 0; i < 8; i++) served.push(replicaOf((await send(port, { host: HOST, path: "/" })).body));
    // Every request succeeded (connect failures are retried elsewhere); the dead one is now out.
    expect(server.replicas().map((r) => r.ejected)).toEqual([false, true, false]);
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push(replicaOf((await send(port, { host: HOST, path: "/" })).body));
    expect(after.filter((name, i) => i > 0 && name === after[i - 1])).toEqual([]);
    expect(new Set(after)).toEqual(new Set(["r0", "r1"]));
    expect(served).toHaveLength(8);
  });
});
