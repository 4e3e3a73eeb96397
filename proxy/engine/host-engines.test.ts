/**
 * The engine signals through the proxy: the host scrapes real fake model servers (vLLM and SGLang
 * formats, load following their open requests), sets the routing state's engine loads, reports the
 * signals and queue samples in its stats and exports them as metrics — in this process and with a
 * child process (the parent scrapes). The scraper's clock is driven by the test.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type FakeModelServer, startFakeModelServer } from "../../test/fakes/model-server.ts";
import { configDocument } from "../../test/support/config-builder.ts";
import { until } from "../../test/support/until.ts";
import { startTunedProxy, type TunedProxyHandle } from "../index.ts";
import { FakeClock } from "./fake-clock.ts";

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Opens `n` streams on `server` directly (gated: they stay open). */
function load(server: FakeModelServer, n: number): void {
  server.gated = true;
  for (let i = 0; i < n; i++)
    void fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", prompt: "hi", stream: true }),
    })
      .then((r) => r.text())
      .catch(() => {});
}

async function setup(processes: number) {
  const vllm = await startFakeModelServer("v", { metrics: { engine: "vllm", maxRunning: 2, ranks: 2 } });
  const sglang = await startFakeModelServer("s", { metrics: { engine: "sglang", prefix: "sglang_", maxRunning: 4 } });
  const plain = await startFakeModelServer("p");
  const clock = new FakeClock();
  const proxy: TunedProxyHandle = await startTunedProxy(
    {
      httpPort: 0,
      processes,
      initialConfig: configDocument(1, [
        {
          name: "llm",
          model: { name: "m", format: "openai", prefix: "/v1" },
          router: { type: "sglang", policy: "power_of_two" },
          replicas: [
            { id: "v", url: vllm.url },
            { id: "s", url: sglang.url },
            { id: "p", url: plain.url },
          ],
        },
        { name: "off", engine: "none", model: { name: "o", format: "openai", prefix: "/v1" }, replicas: [vllm.url] },
      ]),
    },
    { engines: { clock, random: () => 0 } },
  );
  cleanup.push(
    () => proxy.close(),
    () => vllm.close(),
    () => sglang.close(),
    () => plain.close(),
  );
  return { vllm, sglang, plain, clock, proxy };
}

const engineOf = (proxy: TunedProxyHandle, id: string) => proxy.routingLoads().find((l) => l.id === id)?.engine;

describe.each([0, 1])("engine signals with %i child processes", (processes) => {
  it("feeds fresh loads to the routing state, the stats report and the metrics; drops them when stale", async () => {
    const { vllm, sglang, plain, clock, proxy } = await setup(processes);
    load(vllm, 5);
    load(sglang, 1);
    await until("the load is open", () => vllm.active === 5 && sglang.active === 1);
    await clock.advance(0);
    await until("both engines scraped", () => engineOf(proxy, "v") && engineOf(proxy, "s"));
    expect(engineOf(proxy, "v")).toEqual({ running: 2, waiting: 3, kvUsage: 1, inFlightAtScrape: 0, at: clock.t });
    expect(engineOf(proxy, "s")).toMatchObject({ running: 1, waiting: 0, kvUsage: 0.25 });
    expect(engineOf(proxy, "p")).toBeNull();
    await until("the plain replica answered 404", async () => {
      const llm = (await proxy.stats()).find((s) => s.service === "llm")!;
      return llm.engine?.find((e) => e.replica === "p")?.state === "unsupported";
    });
    const stats = await proxy.stats();
    expect(stats.find((s) => s.service === "off")!.engine).toBeUndefined();
    expect(stats.find((s) => s.service === "llm")!.engine).toEqual([
      expect.objectContaining({
        replica: "v",
        engine: "vllm",
        state: "fresh",
        running: 2,
        waiting: 3,
        kv_cache_usage: 1,
      }),
      expect.objectContaining({ replica: "s", engine: "sglang", state: "fresh", running: 1, waiting: 0 }),
      expect.objectContaining({
        replica: "p",
        engine: null,
        state: "unsupported",
        error: `GET ${plain.url}/metrics answered 404`,
      }),
    ]);
    const families = await proxy.metrics();
    const waiting = families.find((f) => f.name === "gateplane_engine_requests_waiting")!;
    expect(waiting.samples).toContainEqual({ labels: ["service", "llm", "replica", "v"], value: 3 });
    const fresh = families.find((f) => f.name === "gateplane_engine_signal_fresh")!;
    expect(fresh.samples).toContainEqual({
      labels: ["service", "llm", "replica", "p", "state", "unsupported"],
      value: 0,
    });

    // A queue sample at the host's next tick: the mean of 3 and 0 waiting.
    const first = engineOf(proxy, "v")!.at;
    await clock.advance(2000);
    await until("scraped again", () => (engineOf(proxy, "v")?.at ?? 0) > first);
    const window = (await proxy.stats()).find((s) => s.service === "llm")!.windows["30"].llm;
    expect(window?.queue).toEqual({ waiting: 1.5, samples: 1 });

    // The vLLM server goes away: its figures last three intervals, then policies fall back.
    await vllm.close();
    await clock.advance(2000);
    await until("the failure seen", async () => {
      const v = (await proxy.stats()).find((s) => s.service === "llm")!.engine![0]!;
      return v.error !== null;
    });
    expect(engineOf(proxy, "v")).not.toBeNull();
    await clock.advance(4001);
    await until("vLLM's load dropped", () => engineOf(proxy, "v") === null);
    const v = (await proxy.stats()).find((s) => s.service === "llm")!.engine![0]!;
    expect(v).toMatchObject({ state: "failed", running: null });
    expect(engineOf(proxy, "s")).not.toBeNull();
  });
});
