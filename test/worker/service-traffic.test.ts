import { describe, expect, it } from "vitest";
import { CLOSE_CODES } from "../../schema/agent-protocol.ts";
import { DURATION_BOUNDS, type LlmWindow, TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import type { Service } from "../../schema/service-api.ts";
import type { Percentiles } from "../../schema/traffic.ts";
import { bucketOf, llmWindow, type Observed, trueQuantile } from "../support/llm-windows.ts";
import {
  api,
  applyService,
  connectAgent,
  newProject,
  objectSql,
  runningGateway,
  servicesPath,
  waitFor,
} from "./helpers.ts";

// LLM traffic from the agents of two gateway replicas: merged bucket by bucket into the service's
// `traffic`, each replica's own under `gateway_replicas[].traffic`; a malformed report is refused
// whole, naming the field, and changes nothing.

const spread = (n: number, from: number, step: number) => Array.from({ length: n }, (_, i) => from + i * step);

/** Replica 0 is fast and busy, replica 1 slow and quiet: the union's percentiles are neither's. */
const FAST: Observed = {
  duration: spread(80, 0.5, 0.02),
  ttft: spread(80, 0.02, 0.002),
  tpot: spread(80, 0.008, 0.0001),
  itl: spread(400, 0.006, 0.00005),
  errors: 2,
  tokens: { input: 48_000, output: 9_600, estimated_output: 600 },
};
const SLOW: Observed = {
  duration: spread(20, 4, 0.3),
  ttft: spread(20, 1.2, 0.15),
  tpot: spread(20, 0.04, 0.002),
  itl: spread(100, 0.03, 0.0005),
  errors: 1,
  tokens: { input: 30_000, output: 2_400, estimated_output: 0 },
};

/** The same observations in the 60- and 300-s windows; the 30-s window saw nothing (no `llm`, as agents send it). */
function statsMessage(llm: unknown) {
  const window = { requests: 1, request_time: 0.5, llm };
  return {
    type: "stats",
    at: Date.now(),
    services: [{ service: "llama", windows: { "30": { requests: 0, request_time: 0 }, "60": window, "300": window } }],
  };
}

/** Every percentile lies within the bucket of the true value of `values`. */
function expectWithinBuckets(got: Percentiles, bounds: readonly number[], values: readonly number[]) {
  for (const [key, q] of [
    ["p50", 0.5],
    ["p90", 0.9],
    ["p99", 0.99],
  ] as const) {
    const [lo, hi] = bucketOf(bounds, trueQuantile(values, q));
    expect(got[key], `${key} of ${values.length} values`).toBeGreaterThanOrEqual(lo);
    expect(got[key], `${key} of ${values.length} values`).toBeLessThanOrEqual(hi);
  }
}

async function setUp() {
  const project = await newProject();
  const tokens = await runningGateway(project, "gw-traffic", 2);
  const created = await applyService(project, { type: "service", name: "llama", https: false, usage: "include" });
  expect(created.status).toBe(201);
  const agents = await Promise.all(tokens.map((t) => connectAgent(t)));
  const get = async () => (await api<Service>("GET", `${servicesPath(project)}/llama`)).body;
  return { project, tokens, agents, get };
}

describe("LLM traffic of a service", () => {
  it("merges two gateway replicas' windows into percentiles of all their requests, and shows each replica's", async () => {
    const { agents, get } = await setUp();
    const [a, b] = agents;
    // The document carries the service's usage mode to the proxies.
    await waitFor("document", async () => a!.configs.at(-1)?.services.length);
    expect(a!.configs.at(-1)!.services[0]!.usage).toBe("include");

    expect((await get()).traffic).toBeNull();
    a!.send(statsMessage(llmWindow(FAST)));
    // One of two running replicas reported: no merged view yet, but that replica's own.
    const partial = await waitFor("replica 0's traffic", async () => {
      const s = await get();
      return s.gateway_replicas.find((r) => r.replica_num === 0)?.traffic ? s : null;
    });
    expect(partial.traffic).toBeNull();
    expect(partial.gateway_replicas.find((r) => r.replica_num === 1)?.traffic).toBeNull();

    b!.send(statsMessage(llmWindow(SLOW)));
    const s = await waitFor("merged traffic", async () => (await get()).traffic && get());
    const w = s.traffic!.windows["60"];
    expect(w.requests).toBe(100);
    expect(w.requests_per_second).toBe(1.667);
    expect(w.errors).toBe(3);
    expect(w.error_rate).toBe(0.03);
    expect(w.tokens).toEqual({
      input: 78_000,
      output: 12_000,
      estimated_output: 600,
      input_per_second: 1300,
      output_per_second: 200,
    });
    expectWithinBuckets(w.ttft, TTFT_BOUNDS, [...FAST.ttft!, ...SLOW.ttft!]);
    expectWithinBuckets(w.duration, DURATION_BOUNDS, [...FAST.duration, ...SLOW.duration]);
    expectWithinBuckets(w.tpot, TPOT_BOUNDS, [...FAST.tpot!, ...SLOW.tpot!]);
    expectWithinBuckets(w.itl, TPOT_BOUNDS, [...FAST.itl!, ...SLOW.itl!]);
    // p99 of TTFT is the slow replica's, p50 the fast one's: nothing was averaged.
    expect(w.ttft.p50!).toBeLessThan(0.25);
    expect(w.ttft.p99!).toBeGreaterThan(2.5);
    expect(s.traffic!.windows["30"].requests).toBe(0);
    expect(s.traffic!.windows["30"].ttft).toEqual({ p50: null, p90: null, p99: null });

    const own = (n: number) => s.gateway_replicas.find((r) => r.replica_num === n)!.traffic!.windows["60"];
    expect(own(0).requests).toBe(80);
    expect(own(1).requests).toBe(20);
    expect(own(1).error_rate).toBe(0.05);
    expectWithinBuckets(own(0).ttft, TTFT_BOUNDS, FAST.ttft!);
    expectWithinBuckets(own(1).ttft, TTFT_BOUNDS, SLOW.ttft!);
    expectWithinBuckets(own(0).itl, TPOT_BOUNDS, FAST.itl!);
    expectWithinBuckets(own(1).itl, TPOT_BOUNDS, SLOW.itl!);

    // dstack's stats are what they were: requests and mean time, no distributions.
    expect(s.stats!.windows["60"]).toEqual({ requests: 2, request_time: 0.5 });
    for (const agent of agents) agent.ws.close(1000, "done");
  });

  it("refuses a malformed report whole, naming the field, and changes nothing", async () => {
    const { project, tokens, agents, get } = await setUp();
    const [a, b] = agents;
    a!.send(statsMessage(llmWindow(FAST)));
    b!.send(statsMessage(llmWindow(SLOW)));
    const before = await waitFor("traffic", async () => (await get()).traffic && get());
    const reports = () =>
      objectSql(project, "gw-traffic", "SELECT replica_num, stats, stats_at FROM replicas ORDER BY replica_num");
    const stored = await reports();

    const spoilt: [string, (w: LlmWindow) => void, string][] = [
      [
        "too long",
        (w) => (w.ttft.counts = Array(TTFT_BOUNDS.length + 2).fill(1)),
        `stats: services[0].windows.60.llm.ttft.counts: expected at most ${TTFT_BOUNDS.length + 1} buckets`,
      ],
      ["negative", (w) => (w.itl.counts = [3, -1]), "stats: services[0].windows.60.llm.itl.counts[1]: "],
    ];
    for (const [what, spoil, reason] of spoilt) {
      const agent = await connectAgent(tokens[0]!);
      const closed = new Promise<CloseEvent>((resolve) => agent.ws.addEventListener("close", resolve));
      const w = llmWindow({ ...FAST, duration: [1] });
      spoil(w);
      agent.send(statsMessage(w));
      const event = await closed;
      expect(event.code, what).toBe(CLOSE_CODES.BAD_MESSAGE);
      expect(event.reason, what).toContain(reason);
    }
    expect(await reports()).toEqual(stored);
    const after = await get();
    expect(after.traffic).toEqual(before.traffic);
    expect(after.stats).toEqual(before.stats);
    for (const agent of agents) agent.ws.close(1000, "done");
  });
});
