/**
 * The PD cost model of the routing simulator (`bench/router-sim-pd.ts`, behind `npm run bench:pd`):
 * what the docs' PD figures rest on. Tiny fleets and workloads, each run in milliseconds.
 */
import { describe, expect, it } from "vitest";
import type { SimRequest } from "../../bench/router-sim.ts";
import { type Fleet, simulatePd } from "../../bench/router-sim-pd.ts";
import { DEFAULT_ENGINE, DEFAULT_TRANSFER } from "../../bench/router-sim-pd-cost.ts";
import type { RouterConfig, RouterPolicy } from "../../schema/router.ts";

let nextToken = 0;
const fresh = (n: number) => Array.from({ length: n }, () => nextToken++);
const request = (prompt: readonly number[], output: number, arrival = 0): SimRequest => ({
  arrival,
  prompt,
  output: fresh(output),
});
const pd = (prefill: number, decode: number, p: RouterPolicy, d: RouterPolicy): Fleet => ({
  kind: "pd",
  prefill,
  decode,
  router: { type: "sglang", policy: p, pd_disaggregation: true, prefill_policy: p, decode_policy: d },
});
const noScrape = { ...DEFAULT_ENGINE, scrapeSeconds: 0 };
/** One decode step holding `n` running decodes. */
const step = (n: number) => noScrape.stepBase + noScrape.decodePerSeq * n;

describe("PD simulation", () => {
  it("keeps decode steps free of prefill: ITL stays a decode step's while long prompts prefill", () => {
    // 4 short requests that decode 50 tokens each, and 8 long prompts (8 K tokens) answered with one token.
    const workload = () => [
      ...Array.from({ length: 4 }, () => request(fresh(16), 50)),
      ...Array.from({ length: 8 }, (_, i) => request(fresh(8192), 1, 0.001 * (i + 1))),
    ];
    const disaggregated = simulatePd(workload(), pd(1, 1, "round_robin", "round_robin"), noScrape);
    // A token waits for at most the step in progress when it joined, then its own step.
    expect(disaggregated.itl.max).toBeLessThanOrEqual(2 * step(4) + 1e-9);
    expect(disaggregated.itlOver50ms).toBe(0);
    // Co-located, the same decodes share steps with 2,048-token prefill chunks (~100 ms each).
    const colocated = simulatePd(workload(), { kind: "colocated", workers: 2, policy: "round_robin" }, noScrape);
    expect(colocated.itl.max).toBeGreaterThan(noScrape.prefillPerToken * noScrape.chunkTokens);
    expect(colocated.itlOver50ms).toBeGreaterThan(0);
  });

  it("adds the KV transfer (latency + prompt tokens over the NIC) to TTFT, and nothing else", () => {
    const prompt = fresh(1000);
    const co = simulatePd([request(prompt, 2)], { kind: "colocated", workers: 1, policy: "round_robin" }, noScrape);
    const split = simulatePd([request(prompt, 2)], pd(1, 1, "round_robin", "round_robin"), noScrape);
    const transfer = DEFAULT_TRANSFER.base + 1000 * DEFAULT_TRANSFER.perToken;
    expect(co.ttft.p50).toBeCloseTo(noScrape.stepBase + 1000 * noScrape.prefillPerToken, 9);
    expect(split.ttft.p50 - co.ttft.p50).toBeCloseTo(transfer, 9);
    expect(split.handoffMean).toBeCloseTo(transfer, 9);
  });

  it("picks each request's pair with the two policies: prefill on the text, decode over the decode workers", () => {
    const system = fresh(1024);
    const requests = Array.from({ length: 6 }, (_, i) => request([...system, ...fresh(32)], 4, i * 0.5));
    const result = simulatePd(requests, pd(2, 3, "cache_aware", "round_robin"), noScrape);
    // cache_aware keeps the shared prefix on one prefill worker (indexes 0–1) ...
    expect(new Set(result.pairs.map(([p]) => p)).size).toBe(1);
    expect(result.pairs[0]![0]).toBeLessThan(2);
    // ... while round_robin walks the decode workers (indexes 2–4), as the proxy's two balancers do.
    expect(result.pairs.map(([, d]) => d)).toEqual([2, 3, 4, 2, 3, 4]);
    expect(result.served).toEqual([...(result.pairs[0]![0] === 0 ? [6, 0] : [0, 6]), 2, 2, 2]);
  });

  it("refuses a router without PD, as the proxy builds no PD route for one", () => {
    const router: RouterConfig = { type: "sglang", policy: "cache_aware" };
    expect(() => simulatePd([request(fresh(16), 2)], { kind: "pd", prefill: 1, decode: 1, router }, noScrape)).toThrow(
      /pd_disaggregation/,
    );
  });

  it("limits decode concurrency by its KV: a request that does not fit waits for the running one's end", () => {
    // 2 requests of 100 + 10 tokens; the decode worker holds 150 tokens of KV: one at a time.
    const small = { ...noScrape, kvTokens: 150 };
    const result = simulatePd(
      [request(fresh(100), 10), request(fresh(100), 10)],
      pd(1, 1, "round_robin", "round_robin"),
      small,
    );
    const roomy = simulatePd(
      [request(fresh(100), 10), request(fresh(100), 10)],
      pd(1, 1, "round_robin", "round_robin"),
      noScrape,
    );
    // The first request's TTFT: its prefill step, then its KV over the NIC; its last token 9 decode steps later.
    const first =
      noScrape.stepBase + 100 * noScrape.prefillPerToken + DEFAULT_TRANSFER.base + 100 * DEFAULT_TRANSFER.perToken;
    // Small: the second's KV waits until then (p99 of two is the later one); roomy: it goes at once.
    expect(result.ttft.p99).toBeGreaterThanOrEqual(first + 9 * step(1));
    expect(roomy.ttft.p99).toBeLessThan(first + 9 * step(1));
  });
});
