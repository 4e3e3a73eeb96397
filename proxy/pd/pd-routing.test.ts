import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigService } from "../../schema/config-document.ts";
import { type PdEngine, startPdEngines } from "../../test/fakes/pd-engines.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import { type ProxyHandle, startTunedProxy } from "../index.ts";

// Built-in PD routing over real sockets, against the protocol-faithful fake pair (test/fakes/pd-engines.ts).
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HOST = `pd.${DOMAIN}`;
const ROUTER = {
  type: "sglang" as const,
  policy: "cache_aware" as const,
  pd_disaggregation: true as const,
  prefill_policy: "cache_aware" as const,
  decode_policy: "power_of_two" as const,
};

async function setup(
  counts: { prefill: number; decode: number },
  options: { transferTimeoutMs?: number; model?: ConfigService["model"]; processes?: number } = {},
) {
  const engines = await startPdEngines(counts, { transferTimeoutMs: options.transferTimeoutMs ?? 1_000 });
  cleanups.push(() => engines.close());
  const replica = (e: PdEngine) => ({
    id: e.id,
    url: e.url,
    role: e.role,
    ...(e.bootstrapPort !== null ? { bootstrap_port: e.bootstrapPort } : {}),
  });
  const doc = configDocument(1, [
    {
      name: "pd",
      router: ROUTER,
      model: options.model ?? null,
      replicas: [...engines.prefill, ...engines.decode].map(replica),
    },
  ]);
  const proxy: ProxyHandle = await startTunedProxy(
    { httpPort: 0, processes: options.processes ?? 0, initialConfig: doc, log: () => {} },
    { settings: { drainTimeoutMs: 2_000 } },
  );
  cleanups.push(() => proxy.close());
  return { engines, proxy };
}

const post = (proxy: ProxyHandle, path: string, body: unknown) =>
  send(proxy.port, {
    host: HOST,
    method: "POST",
    path,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** Every room a decode worker got reached it from the prefill worker the router named. */
function paired(engines: Awaited<ReturnType<typeof startPdEngines>>): void {
  const decodeRooms = engines.decode.flatMap((d) => d.requests.flatMap((r) => r.bootstrap.map((b) => b.room)));
  expect(engines.transfer.transferred.sort()).toEqual(decodeRooms.sort());
}

describe("built-in PD routing", () => {
  it("sends each request to a prefill and a decode worker with the bootstrap fields, and answers with decode's", async () => {
    const { engines, proxy } = await setup({ prefill: 2, decode: 2 });
    const generate = await post(proxy, "/generate", {
      text: "Tell me a story",
      sampling_params: { max_new_tokens: 4 },
    });
    expect(generate.status).toBe(200);
    expect(JSON.parse(generate.body)).toMatchObject({ text: "Disaggregated hello!" });
    const chat = await post(proxy, "/v1/chat/completions", { model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(chat.status).toBe(200);
    expect(JSON.parse(chat.body).system_fingerprint).toMatch(/^decode:d[12]$/);
    // Batch: one room per prompt, all from the same prefill worker.
    const batch = await post(proxy, "/v1/completions", { model: "m", prompt: ["a", "b", "c"] });
    expect(batch.status).toBe(200);
    expect(engines.transfer.transferred).toHaveLength(5);
    const sentBatch = engines.decode.flatMap((d) => d.requests).find((r) => r.path === "/v1/completions")!;
    expect(sentBatch.bootstrap).toHaveLength(3);
    expect(new Set(sentBatch.bootstrap.map((b) => b.room)).size).toBe(3);
    for (const r of [...engines.prefill, ...engines.decode].flatMap((e) => e.requests)) {
      for (const b of r.bootstrap) expect(BigInt(b.room) < 2n ** 63n).toBe(true);
    }
    paired(engines);
    // Other paths go to any replica, whole (the fake answers them 404).
    const models = await send(proxy.port, { host: HOST, path: "/v1/models" });
    expect(models.status).toBe(404);
    expect(models.body).toBe('{"error":"not found"}');
  });

  it("streams decode's answer and drops prefill's", async () => {
    const { engines, proxy } = await setup({ prefill: 1, decode: 1 });
    const res = await post(proxy, "/v1/chat/completions", {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    const events = res.body.split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)).choices[0].delta.content)
      .join("");
    expect(content).toBe("Disaggregated hello!");
    expect(engines.prefill[0]!.requests[0]!.body).toContain('"stream":true');
    paired(engines);
  });

  it("serves the openai client, streaming and not", async () => {
    const { engines, proxy } = await setup({ prefill: 1, decode: 2 });
    const client = new OpenAI({ apiKey: "none", baseURL: `http://127.0.0.1:${proxy.port}/proxy/services/main/pd/v1` });
    const whole = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    expect(whole.choices[0]!.message.content).toBe("Disaggregated hello!");
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("Disaggregated hello!");
    const completion = await client.completions.create({ model: "m", prompt: "once upon" });
    expect(completion.choices[0]!.text).toBe("Disaggregated hello!");
    paired(engines);
  });

  it("serves a model service's PD requests through the OpenAI entrypoint too", async () => {
    const { engines, proxy } = await setup(
      { prefill: 1, decode: 1 },
      { model: { name: "pd-model", format: "openai", prefix: "/v1" } },
    );
    const client = new OpenAI({ apiKey: "none", baseURL: `http://127.0.0.1:${proxy.port}/v1` });
    const whole = await client.chat.completions.create({
      model: "pd-model",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(whole.choices[0]!.message.content).toBe("Disaggregated hello!");
    expect(engines.transfer.transferred).toHaveLength(1);
  });

  it("routes PD requests in the proxy's child processes too", async () => {
    const { engines, proxy } = await setup({ prefill: 2, decode: 2 }, { processes: 2 });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(proxy, "/generate", { text: `request ${i}`, stream: i % 2 === 0 })),
    );
    for (const a of answers) expect(a.status).toBe(200);
    expect(engines.transfer.transferred).toHaveLength(8);
    paired(engines);
  });

  it("tries another pair when either side fails before any byte reached the client", async () => {
    const { engines, proxy } = await setup({ prefill: 2, decode: 2 });
    for (const e of engines.prefill) e.fail(1, 503);
    const first = await post(proxy, "/generate", { text: "one" });
    expect(first.status).toBe(200);
    engines.decode[0]!.resetNext(1);
    engines.decode[1]!.resetNext(1);
    const second = await post(proxy, "/generate", { text: "two", stream: true });
    expect(second.status).toBe(200);
    expect(second.body).toContain("data: [DONE]");
    // Retried pairs and the decode workers' resets are counted.
    const exposition = await proxy.exposition();
    const total = (name: string) =>
      exposition
        .split("\n")
        .filter((l) => l.startsWith(`${name}{`) && l.includes('service="pd"'))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    expect(total("gateplane_retries_total")).toBe(4);
    expect(total("gateplane_upstream_errors_total")).toBe(2);
    // Each failed side counted by its role: both prefills once (503), both decodes once (reset).
    expect(total("gateplane_pd_failures_total")).toBe(4);
    expect(exposition).toMatch(/gateplane_pd_failures_total\{service="pd",replica="p1",role="prefill"\} 1\n/);
    expect(exposition).toMatch(/gateplane_pd_failures_total\{service="pd",replica="d2",role="decode"\} 1\n/);
    // Two answers, two KV transfers, each to the decode worker that was told that prefill.
    expect(engines.transfer.transferred).toHaveLength(2);
    const decodeRooms = engines.decode.flatMap((d) => d.requests.flatMap((r) => r.bootstrap.map((b) => b.room)));
    for (const room of engines.transfer.transferred) expect(decodeRooms).toContain(room);
    // A side that keeps failing: the client gets its error (decode's as one SSE error event for a stream).
    for (const e of engines.decode) e.fail(5, 500);
    const failed = await post(proxy, "/v1/chat/completions", { model: "m", stream: true, messages: [] });
    expect(failed.status).toBe(500);
    expect(failed.body).toMatch(/^data: \{"error":\{"message":".*failed on purpose.*","status":500\}\}\n\n$/);
    for (const e of engines.prefill) e.fail(5, 500);
    for (const e of engines.decode) e.fail(0);
    const prefillDown = await post(proxy, "/generate", { text: "x" });
    expect(prefillDown.status).toBe(500);
    expect(JSON.parse(prefillDown.body).error).toMatch(/^prefill: .*failed on purpose/);
    // Every worker's requests ended (the loads went back with them).
    const workers = [...engines.prefill, ...engines.decode];
    await until("every worker's requests ended", () => workers.every((e) => e.open === 0), 3_000);
  });

  it("answers 503 saying what is missing while a role has no replica", async () => {
    const { proxy } = await setup({ prefill: 1, decode: 0 });
    const res = await post(proxy, "/generate", { text: "hi" });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error).toBe(
      "service pd disaggregates prefill and decode and needs at least one replica of each role (has 1 prefill, 0 decode)",
    );
  });
});
