/**
 * PD decisions in the host's routing state with 2 proxy processes behind real sockets: every pair is
 * decided by the parent (its prefill-side cache_aware counts every decision, with `role="prefill"`),
 * so a shared prefix keeps to one prefill worker whichever process took the connection; the loads
 * of both roles go back to 0.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type PdEngine, startPdEngines } from "../../test/fakes/pd-engines.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import { renderExposition } from "../observe/exposition.ts";
import { ProcessPool } from "../process-pool.ts";
import { DEFAULT_SERVER_SETTINGS } from "../settings.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SYSTEM = "You are a helpful assistant who answers in one short sentence. ".repeat(4);

describe("PD decisions in the host's routing state", () => {
  it("decides every pair in the parent: a shared prefix keeps to one prefill worker across processes", async () => {
    const engines = await startPdEngines({ prefill: 2, decode: 2 }, { transferTimeoutMs: 5_000 });
    cleanups.push(() => engines.close());
    const replica = (e: PdEngine) => ({
      id: e.id,
      url: e.url,
      role: e.role,
      ...(e.bootstrapPort !== null ? { bootstrap_port: e.bootstrapPort } : {}),
    });
    const processes = await ProcessPool.start({
      host: "127.0.0.1",
      port: 0,
      count: 2,
      // Decisions are the parent's even when a loaded machine stalls it past the 500 ms a serving
      // process waits by default before deciding alone (that fallback has its own tests).
      settings: { ...DEFAULT_SERVER_SETTINGS, drainTimeoutMs: 1_000, routingAnswerMs: 30_000 },
      document: configDocument(1, [
        {
          name: "pd",
          router: {
            type: "sglang",
            policy: "cache_aware",
            pd_disaggregation: true,
            prefill_policy: "cache_aware",
            decode_policy: "power_of_two",
          },
          replicas: [...engines.prefill, ...engines.decode].map(replica),
        },
      ]),
      sharing: "handle",
      tlsPort: null,
      certificates: [],
      challenges: {},
      log: () => {},
      onHold: () => {},
    });
    cleanups.push(() => processes.close());
    // Each request on its own connection, so the kernel spreads them over both processes: batches of
    // 12 at once until both have served some (a loaded machine can leave one asleep through a batch).
    const ask = (i: number) =>
      send(processes.port, {
        host: `pd.${DOMAIN}`,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "m",
          messages: [
            { role: "system", content: SYSTEM },
            { role: "user", content: `question ${i}` },
          ],
        }),
      });
    const perProcess = async () =>
      (await processes.stats()).map((stats) => stats.reduce((n, s) => n + s.windows["300"].requests, 0));
    let N = 0;
    for (let batch = 0; batch < 5 && (N === 0 || (await perProcess()).some((n) => n === 0)); batch++) {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(N + i)));
      for (const a of answers) expect(a.status).toBe(200);
      N += 12;
    }
    const served = await perProcess();
    expect(served).toHaveLength(2);
    for (const n of served) expect(n).toBeGreaterThan(0);
    // Every prefill decision was the parent's, and all requests after the first found the prefix there.
    const exposition = renderExposition(await processes.metrics());
    const count = (name: string) =>
      Number(
        exposition
          .split("\n")
          .find((l) => l.startsWith(`${name}{service="pd",role="prefill"}`))
          ?.split(" ")[1] ?? 0,
      );
    expect(count("gateplane_cache_aware_hits_total") + count("gateplane_cache_aware_misses_total")).toBe(N);
    const prefilled = engines.prefill.map((e) => e.requests.length).sort((a, b) => a - b);
    expect(prefilled).toEqual([0, N]);
    // Both roles' loads are the host's, each replica once with its role, and all went back.
    const loads = processes.routingLoads();
    expect(loads.map((l) => `${l.id}:${l.role}`).sort()).toEqual([
      "d1:decode",
      "d2:decode",
      "p1:prefill",
      "p2:prefill",
    ]);
    await until("the loads back to 0", () => processes.routingLoads().every((l) => l.inFlight === 0), 5_000, 10);
  });
});
