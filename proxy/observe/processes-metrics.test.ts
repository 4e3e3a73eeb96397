import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { histogramCount } from "../../schema/llm-stats.ts";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../../test/fakes/model-server.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import { startTunedProxy, type TunedProxyHandle } from "../index.ts";
import type { HistogramSample, MetricFamily, ScalarSample } from "./families.ts";

// Two proxy processes: the parent adds up their series (never one series per process), and keeps
// a dead process's counts so the host's counters never go down.
let proxy: TunedProxyHandle;
let model: FakeModelServer;

beforeAll(async () => {
  model = await startFakeModelServer("m", { ttftMs: 5 });
  proxy = await startTunedProxy(
    {
      httpPort: 0,
      processes: 2,
      initialConfig: configDocument(1, [
        {
          name: "chat",
          replicas: [{ id: "r1", url: model.url }],
          model: { name: "llama", format: "openai", prefix: "/v1" },
        },
      ]),
    },
    { sharing: "handle" },
  );
});

afterAll(async () => {
  await proxy?.close();
  await model?.close();
});

/** `n` streamed chat requests, each on a new connection so the kernel may hand it to either process. */
async function stream(n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async () => {
      const reply = await send(proxy.port, {
        host: `chat.${DOMAIN}`,
        path: "/v1/chat/completions",
        method: "POST",
        body: JSON.stringify({ model: "llama", stream: true, stream_options: { include_usage: true } }),
      });
      expect(reply.status).toBe(200);
    }),
  );
}

const family = (families: MetricFamily[], name: string) => families.find((f) => f.name === name);
function ttftCount(families: MetricFamily[]): number {
  const samples = (family(families, "gen_ai_server_time_to_first_token_seconds")?.samples ?? []) as HistogramSample[];
  expect(samples).toHaveLength(1);
  return samples[0]!.counts.reduce((a, b) => a + b, 0);
}
const requests = (families: MetricFamily[]) =>
  ((family(families, "gateplane_requests_total")?.samples ?? []) as ScalarSample[]).map((s) => [
    s.labels.join(","),
    s.value,
  ]);

describe("metrics of several proxy processes", () => {
  it("adds up every process's series and LLM windows, one series per label set", async () => {
    await stream(12);
    // The records are made as responses close, a moment after the client has read them.
    const families = await until("12 requests in the metrics", async () => {
      const f = await proxy.metrics();
      return ttftCount(f) === 12 && f;
    });
    expect(requests(families)).toEqual([["service,chat,replica,r1,code,2xx", 12]]);
    const tokens = (family(families, "gateplane_tokens_total")!.samples as ScalarSample[]).map((s) => s.value);
    expect(tokens).toEqual([12, 12 * TOKENS.length]);
    const stats = await proxy.stats();
    const llm = stats[0]!.windows["30"].llm!;
    expect(histogramCount(llm.ttft)).toBe(12);
    expect(histogramCount(llm.itl)).toBe(12 * (TOKENS.length - 1));
    expect(llm.tokens).toEqual({ input: 12, output: 12 * TOKENS.length, estimated_output: 0 });
    const text = await proxy.exposition();
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(text).not.toMatch(/pid|process=/);
  });

  it("keeps the counts of a process that died, so counters never go down", async () => {
    const before = ttftCount(await proxy.metrics());
    const [victim] = proxy.pids() as [number];
    process.kill(victim, "SIGKILL");
    await until("a replacement process", () => proxy.pids().length === 2 && !proxy.pids().includes(victim));
    expect(ttftCount(await proxy.metrics())).toBe(before);
    await stream(6);
    await until("6 more requests in the metrics", async () => ttftCount(await proxy.metrics()) === before + 6);
  });
});
