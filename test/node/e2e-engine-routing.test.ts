/**
 * Routing and scaling on what the engines feel, end to end: a local gateway of the `npm start`
 * stack (its real agent and proxy) in front of fake engines whose `/metrics` and latency follow
 * their load (test/fakes/engine-load.ts: a batch of `maxRunning`, a queue beyond it, prefill per
 * prompt character their own prefix cache lacks). Traffic comes from the official `openai` client.
 *
 * - `router: {type: sglang, policy: prefix_load}` over three engines: each conversation stays on the
 *   replica that holds its prefix, distinct prefixes spread so that no engine queues while another
 *   has a free slot;
 * - the engines' signals reach the host's metrics (`gateplane_engine_*`, the gateway's public
 *   `/metrics`) and follow the load;
 * - `scaling: {metric: ttft}` on a slow engine: a `service.scaling` event up, its reason the ttft p90.
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

const SLOTS = 2;
const BURST = 3 * SLOTS;
let stack: SharedStack;
let engines: FakeModelServer[] = [];
let slow: FakeModelServer;
let client: OpenAI;
let host: string;
let metricsToken: string;

const api = <T>(method: string, route: string, body?: unknown) => projectApi<T>(stack, method, route, body);

async function apply(name: string, lines: string[]): Promise<void> {
  const file = path.join(stack.dir, `${name}.dstack.yml`);
  await writeFile(file, `${lines.join("\n")}\n`);
  const applied = await run(stack, "apply", "-f", file, "-y");
  expect(applied.code, applied.stderr).toBe(0);
}

/** A long text of its own for each key: a system prompt no other conversation shares. */
const prefix = (key: string) => Array.from({ length: 200 }, (_, i) => `${key}-${i}`).join(" ");

/** Streams one chat completion; resolves with the replica that answered and the client's TTFT. */
async function chat(model: string, messages: OpenAI.Chat.ChatCompletionMessageParam[]) {
  const sent = performance.now();
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  let replica = "";
  let ttft = 0;
  for await (const chunk of stream) {
    replica = chunk.system_fingerprint ?? replica;
    if (ttft === 0 && chunk.choices[0]?.delta.content) ttft = performance.now() - sent;
  }
  return { replica, ttft };
}

/** The host's `gateplane_engine_*` samples of service `chat`: metric → replica → value. */
async function engineMetrics(): Promise<Map<string, Map<string, number>>> {
  const res = await fetch(`http://${host}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
  expect(res.status).toBe(200);
  const out = new Map<string, Map<string, number>>();
  for (const m of (await res.text()).matchAll(/^(gateplane_engine_\w+)\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.service !== "chat") continue;
    const key = labels.state ? `${m[1]}{${labels.state}}` : m[1]!;
    if (!out.has(key)) out.set(key, new Map());
    out.get(key)!.set(labels.replica!, Number(m[3]));
  }
  return out;
}

beforeAll(async () => {
  // Three engines of two slots; prefill 0.05 ms per uncached character (a 1.9 K-character system
  // prompt: 95 ms cold, nothing warm). The slow one has one slot and prefills 4× slower.
  engines = await Promise.all(
    ["e1", "e2", "e3"].map((name) =>
      startFakeModelServer(name, {
        itlMs: 5,
        metrics: { engine: "vllm", maxRunning: SLOTS },
        load: { prefillMsPerChar: 0.05 },
      }),
    ),
  );
  slow = await startFakeModelServer("slow", {
    itlMs: 5,
    metrics: { engine: "sglang", maxRunning: 1 },
    load: { prefillMsPerChar: 0.2 },
  });
  stack = await sharedStack("engines");
  await apply("gw", [
    "type: gateway",
    "name: engines",
    "backend: local",
    "domain: engines.localhost",
    "observability: {metrics: {public: true}}",
  ]);
  const common = ["type: service", "gateway: engines", "https: false", "auth: false"];
  await apply("chat", [
    ...common,
    "name: chat",
    "model: m1",
    "engine: vllm",
    "router: {type: sglang, policy: prefix_load}",
  ]);
  await apply("slow", [
    ...common,
    "name: slow",
    "model: m2",
    "engine: sglang",
    "replicas: 1..3",
    "scaling: {metric: ttft, target: 0.1, window: 30s}",
  ]);
  for (const [i, e] of engines.entries()) await api("PUT", `/services/chat/replicas/r${i + 1}`, { url: e.url });
  await api("PUT", "/services/slow/replicas/r1", { url: slow.url });
  const created = await run(stack, "service-token", "create", "-q");
  expect(created.code, created.stderr).toBe(0);
  metricsToken = created.stdout.trim();
  await until("both services in sync", async () => {
    const all = await Promise.all(["chat", "slow"].map((s) => api<Service>("GET", `/services/${s}`)));
    return all.every((s) => s.gateway_replicas.length > 0 && s.gateway_replicas.every((r) => r.state === "in_sync"));
  });
  // The gateway routes to a new replica once its first health check passed (docs/health.md).
  await until("every chat replica healthy", async () => {
    const chat = await api<Service>("GET", "/services/chat");
    return chat.replicas.length === 3 && chat.replicas.every((r) => r.health?.state === "healthy");
  });
  const gateway = await api<Gateway>("GET", "/gateways/engines");
  host = gateway.replicas[0]!.hostname!;
  client = new OpenAI({ baseURL: `http://${host}/v1`, apiKey: "unused", maxRetries: 0, timeout: 20_000 });
}, 120_000);

afterAll(async () => {
  for (const e of engines) e.gated = false;
  await stack?.release();
  await Promise.all([...engines, slow].filter(Boolean).map((e) => e.close()));
}, 60_000);

describe("routing and scaling on the engines' signals, through a real gateway host", () => {
  it("prefix_load keeps conversations where their prefix is and spreads new prefixes (no engine queues while another has a slot)", async () => {
    // Three conversations at once, three turns each: every turn resends the whole conversation.
    const placed = await Promise.all(
      ["alpha", "bravo", "charlie"].map(async (key) => {
        const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "system", content: prefix(key) }];
        const seen: string[] = [];
        const ttfts: number[] = [];
        for (let turn = 0; turn < 3; turn++) {
          messages.push({ role: "user", content: `${key} question ${turn}` });
          const { replica, ttft } = await chat("m1", messages);
          seen.push(replica);
          ttfts.push(ttft);
          messages.push({ role: "assistant", content: `answer ${turn}` });
        }
        return { key, seen, ttfts };
      }),
    );
    for (const c of placed) expect(new Set(c.seen).size, `${c.key}: ${c.seen.join(", ")}`).toBe(1);
    // Three distinct prefixes started together: one engine each.
    expect(new Set(placed.map((c) => c.seen[0])).size).toBe(3);
    // The later turns found their prefix cached: each engine's cache served most of their prompts.
    for (const e of engines) expect(e.engine!.cachedChars).toBeGreaterThan(2 * prefix("x").length);

    // A burst of new prefixes, two per engine's two slots, held open until the metrics are read.
    for (const e of engines) {
      e.engine!.peakWaiting = 0;
      e.gated = true;
    }
    const burst = Array.from({ length: BURST }, (_, i) => chat("m1", [{ role: "user", content: prefix(`burst${i}`) }]));
    await until("the burst admitted", () => engines.every((e) => e.active === SLOTS), 10_000, 20);
    // prefix_load put two on each engine: nothing waits while an engine has a free slot.
    expect(engines.map((e) => e.engine!.peakWaiting)).toEqual([0, 0, 0]);

    // The host's scrapes see the engines' batches (fresh signals, running = their open requests).
    const seen = await until(
      "running batches in the host's engine metrics",
      async () => {
        const m = await engineMetrics();
        const running = m.get("gateplane_engine_requests_running");
        const fresh = m.get("gateplane_engine_signal_fresh{fresh}");
        return running?.size === 3 && [...running.values()].every((v) => v === SLOTS) && fresh?.size === 3 ? m : null;
      },
      10_000,
      200,
    );
    expect([...seen.get("gateplane_engine_requests_waiting")!.values()]).toEqual([0, 0, 0]);
    expect([...seen.get("gateplane_engine_kv_cache_usage_ratio")!.values()]).toEqual([1, 1, 1]);
    for (const e of engines) e.gated = false;
    const answered = await Promise.all(burst);
    const perEngine = new Map<string, number>();
    for (const a of answered) perEngine.set(a.replica, (perEngine.get(a.replica) ?? 0) + 1);
    expect([...perEngine.values()]).toEqual([SLOTS, SLOTS, SLOTS]);
  }, 30_000);

  it("scales a slow engine's service up on ttft, the reason naming the p90", async () => {
    // One slot and 200 ms of prefill for each new 1 K-character prompt: four at once queue behind
    // each other (TTFT 0.2, 0.4, 0.6, 0.8 s) against a 0.1 s target.
    const ttfts = await Promise.all(
      [0, 1, 2, 3].map(async (i) => (await chat("m2", [{ role: "user", content: `${i}`.repeat(1000) }])).ttft),
    );
    expect(Math.max(...ttfts)).toBeGreaterThan(600);
    // The decision comes with a stats report (every 5 s) once the last evaluation is 5 s old: ~10 s
    // on an idle machine, more beside another suite. Waited for until the TTFTs would leave the 30 s
    // window the rule reads (then no decision would come).
    const event = await until(
      "a service.scaling event up for slow",
      async () => {
        const { events } = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
          "GET",
          "/events?type=service.scaling",
        );
        return events.find((e) => e.data.service === "slow" && Number(e.data.desired_replicas) > 1);
      },
      28_000,
      250,
    );
    expect(event.data).toMatchObject({ previous_desired_replicas: 1, desired_replicas: 2, current_replicas: 1 });
    expect(event.data.reason).toMatch(/^ttft p90 [\d.]+ s over 30s \/ target 0\.1 s → \d+, step limited to ×2 → 2/);
    const service = await api<Service>("GET", "/services/slow");
    expect(service.scaling).toMatchObject({ desired_replicas: 2, reason: event.data.reason });
    console.log(`ttft scaling: ${event.data.reason}`);
  }, 60_000);
});
