/**
 * The mesh between gateway replicas (docs/routing.md, "Gateway replicas: the mesh") on the shared
 * `npm start` stack: a 2-replica local gateway, each host's agent holding its WebSocket to the
 * gateway's object, which relays their digests.
 * (a) A prefix one host routed (cache_aware over 3 fake engines) is honoured by the other once
 *     its digest is in, within 2 s (a digest every 500 ms + the relay; read on B's /metrics).
 * (b) A client alternating between the hosts under `rps: 2, burst: 0` is admitted about the limit,
 *     not twice it: over 5 s at 10 r/s at most 1.5 × (rps × 5 s) + 2 = 17, where two independent
 *     hosts would admit ≈ 20 (each its own 2 r/s); and at least 0.7 × the limit.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { type FakeModelServer, startFakeModelServer } from "../fakes/model-server.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { projectApi, cli as run, until } from "../support/stack.ts";

let stack: SharedStack;
let engines: FakeModelServer[] = [];
let limited: FakeModelServer;
let clients: OpenAI[] = [];
let hostNames: string[] = [];
let metricsToken = "";

/** A host's `gateplane_mesh_routes_received_total` (its public /metrics). */
async function routesReceived(host: string): Promise<number> {
  const res = await fetch(`http://${host}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
  const line = (await res.text()).split("\n").find((l) => l.startsWith("gateplane_mesh_routes_received_total"));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function apply(name: string, lines: string[]): Promise<void> {
  const file = path.join(stack.dir, `${name}.dstack.yml`);
  await writeFile(file, `${lines.join("\n")}\n`);
  const r = await run(stack, "apply", "-f", file, "-y");
  expect(r.code, r.stderr).toBe(0);
}

/** A prompt no other test sends, long enough to be a prefix worth following (≈ 3,000 characters). */
const prompt = (key: string) =>
  Array.from({ length: 300 }, (_, i) => `${key}-${(i * 7919) % 1000}`)
    .join(" ")
    .slice(0, 3000);

beforeAll(async () => {
  engines = await Promise.all(["e1", "e2", "e3"].map((n) => startFakeModelServer(n)));
  limited = await startFakeModelServer("limited");
  stack = await sharedStack("mesh");
  await apply("gw", [
    "type: gateway",
    "name: mesh",
    "backend: local",
    "domain: mesh.localhost",
    "replicas: 2",
    "observability: {metrics: {public: true}}",
  ]);
  const common = ["type: service", "gateway: mesh", "https: false", "auth: false"];
  await apply("chat", [...common, "name: chat", "model: m1", "router: {type: sglang, policy: cache_aware}"]);
  await apply("capped", [...common, "name: capped", "model: m2", "rate_limits: [{prefix: /, rps: 2, burst: 0}]"]);
  for (const [i, e] of engines.entries())
    await projectApi(stack, "PUT", `/services/chat/replicas/r${i + 1}`, { url: e.url });
  await projectApi(stack, "PUT", "/services/capped/replicas/r1", { url: limited.url });
  await until("both services on both gateway replicas", async () => {
    const all = await Promise.all(["chat", "capped"].map((s) => projectApi<Service>(stack, "GET", `/services/${s}`)));
    return all.every((s) => s.gateway_replicas.length === 2 && s.gateway_replicas.every((r) => r.state === "in_sync"));
  });
  const gateway = await projectApi<Gateway>(stack, "GET", "/gateways/mesh");
  const hosts = gateway.replicas.map((r) => r.hostname!);
  expect(hosts).toHaveLength(2);
  const created = await run(stack, "service-token", "create", "-q");
  expect(created.code, created.stderr).toBe(0);
  metricsToken = created.stdout.trim();
  hostNames = hosts;
  clients = hosts.map(
    (host) => new OpenAI({ baseURL: `http://${host}/v1`, apiKey: "unused", maxRetries: 0, timeout: 10_000 }),
  );
}, 120_000);

afterAll(async () => {
  await stack?.release();
  await Promise.all([...engines, limited].filter(Boolean).map((e) => e.close()));
}, 60_000);

/** Which engine served a chat completion whose last user message is `marker`. */
async function served(client: OpenAI, content: string): Promise<string> {
  const before = engines.map((e) => e.requests.length);
  await client.chat.completions.create({ model: "m1", messages: [{ role: "user", content }] });
  const which = engines.findIndex((e, i) => e.requests.length > before[i]!);
  expect(which).toBeGreaterThanOrEqual(0);
  return `r${which + 1}`;
}

describe("gateway replicas sharing through the mesh", () => {
  it("a prefix routed through one host is followed by the other within 2 s", async () => {
    const [a, b] = clients as [OpenAI, OpenAI];
    for (const key of ["alpha", "bravo", "charlie"]) {
      const text = prompt(key);
      const before = await routesReceived(hostNames[1]!);
      const first = await served(a, text);
      // Host B routes nothing of it until A's digest is in (a probe would teach B's own tree a choice).
      await until("host B received host A's route", async () => (await routesReceived(hostNames[1]!)) > before, 2_000);
      const followed = await served(b, `${text} and then more`);
      expect(followed, `${key}: first through host A on ${first}`).toBe(first);
    }
  }, 15_000);

  it("a client alternating between the hosts gets the limit, not twice it", async () => {
    const seconds = 5;
    let admitted = 0;
    let refused = 0;
    const started = performance.now();
    for (let i = 0; performance.now() - started < seconds * 1000; i++) {
      const client = clients[i % 2]!;
      try {
        await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "hi" }] });
        admitted++;
      } catch (error) {
        expect((error as { status?: number }).status).toBe(429);
        refused++;
      }
      // 10 requests/s in all, 5/s per host: each host alone would admit 2/s.
      const next = started + (i + 1) * 100;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    const limit = 2 * seconds;
    expect(refused).toBeGreaterThan(0);
    // Not starved either (requests are sequential, so the loop may fall a little behind 10/s).
    expect(admitted).toBeGreaterThanOrEqual(Math.floor(limit * 0.7));
    expect(admitted).toBeLessThanOrEqual(Math.ceil(limit * 1.5) + 2);
  }, 15_000);
});
