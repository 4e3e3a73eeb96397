import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { bucketOf, observe, trueQuantile } from "../test/support/llm-windows.ts";
import { AgentMessage } from "./agent-protocol.ts";
import { formatIssue, fromValibot } from "./issues.ts";
import { DURATION_BOUNDS, type LlmWindow, TPOT_BOUNDS, TTFT_BOUNDS } from "./llm-stats.ts";
import { emptyLlmWindow, mergedTraffic, mergeLlmWindows, TrafficSchema, trafficOf, trafficWindow } from "./traffic.ts";

function window(ttft: number[], extra: Partial<Omit<LlmWindow, "ttft">> & { durations?: number[] } = {}): LlmWindow {
  const { durations, ...rest } = extra;
  return {
    ...emptyLlmWindow(),
    duration: observe(DURATION_BOUNDS, durations ?? ttft.map((t) => t * 2)),
    ttft: observe(TTFT_BOUNDS, ttft),
    ...rest,
  };
}

describe("traffic of one window", () => {
  it("is zeros and null percentiles when nothing was measured", () => {
    const w = trafficWindow(undefined, 60);
    expect(w).toEqual({
      requests: 0,
      requests_per_second: 0,
      errors: 0,
      error_rate: null,
      duration: { p50: null, p90: null, p99: null },
      ttft: { p50: null, p90: null, p99: null },
      tpot: { p50: null, p90: null, p99: null },
      itl: { p50: null, p90: null, p99: null },
      tokens: { input: 0, output: 0, estimated_output: 0, input_per_second: 0, output_per_second: 0 },
    });
    expect(trafficWindow(emptyLlmWindow(), 60)).toEqual(w);
  });

  it("counts requests from the duration histogram, rates per second of the window, errors over requests", () => {
    const llm = window([0.2, 0.3], {
      durations: [1, 2, 3, 4],
      errors: 1,
      tokens: { input: 600, output: 90, estimated_output: 30 },
    });
    const w = trafficWindow(llm, 30);
    expect(w.requests).toBe(4);
    expect(w.requests_per_second).toBe(0.133);
    expect(w.errors).toBe(1);
    expect(w.error_rate).toBe(0.25);
    expect(w.tokens).toEqual({
      input: 600,
      output: 90,
      estimated_output: 30,
      input_per_second: 20,
      output_per_second: 3,
    });
  });

  it("estimates percentiles within the bucket of the true value, each with its own bounds", () => {
    const ttft = Array.from({ length: 100 }, (_, i) => 0.05 + i * 0.01); // 0.05 … 1.04
    const itl = Array.from({ length: 100 }, (_, i) => 0.002 + i * 0.0005); // 2 ms … 51.5 ms
    const w = trafficWindow({ ...window(ttft), itl: observe(TPOT_BOUNDS, itl), tpot: observe(TPOT_BOUNDS, itl) }, 60);
    for (const [q, key] of [
      [0.5, "p50"],
      [0.9, "p90"],
      [0.99, "p99"],
    ] as const) {
      const [lo, hi] = bucketOf(TTFT_BOUNDS, trueQuantile(ttft, q));
      expect(w.ttft[key]).toBeGreaterThanOrEqual(lo);
      expect(w.ttft[key]).toBeLessThanOrEqual(hi);
      const [ilo, ihi] = bucketOf(TPOT_BOUNDS, trueQuantile(itl, q));
      expect(w.itl[key]).toBeGreaterThanOrEqual(ilo);
      expect(w.itl[key]).toBeLessThanOrEqual(ihi);
      expect(w.tpot[key]).toBe(w.itl[key]);
    }
  });

  it("answers the highest bound for ranks past it, as histogram_quantile", () => {
    const w = trafficWindow(window([100, 200]), 60);
    expect(w.ttft).toEqual({ p50: 60, p90: 60, p99: 60 });
  });
});

describe("merging windows", () => {
  it("adds bucket by bucket, so percentiles are those of all the requests, never averages", () => {
    // One replica fast, one slow: the median of the union is in between, p99 is the slow one's.
    const fast = window(Array(90).fill(0.03));
    const slow = window(Array(10).fill(7));
    const merged = mergeLlmWindows([fast, undefined, slow])!;
    expect(merged.ttft.counts.reduce((a, b) => a + b)).toBe(100);
    const w = trafficWindow(merged, 60);
    expect(w.ttft.p50).toBeGreaterThan(0.02);
    expect(w.ttft.p50).toBeLessThanOrEqual(0.04);
    expect(w.ttft.p99).toBeGreaterThan(5);
    expect(w.ttft.p99).toBeLessThanOrEqual(7.5);
    // The inputs are left alone.
    expect(fast.ttft.counts.reduce((a, b) => a + b)).toBe(90);
  });

  it("adds errors and tokens, and merges nothing into undefined", () => {
    const a = window([0.1], { errors: 1, tokens: { input: 10, output: 5, estimated_output: 0 } });
    const b = window([0.1], { errors: 2, tokens: { input: 1, output: 2, estimated_output: 2 } });
    const merged = mergeLlmWindows([a, b])!;
    expect(merged.errors).toBe(3);
    expect(merged.tokens).toEqual({ input: 11, output: 7, estimated_output: 2 });
    expect(mergeLlmWindows([undefined, undefined])).toBeUndefined();
  });
});

describe("traffic of every window", () => {
  it("reads each window's llm, absent windows as none, and fits the API schema", () => {
    const t = trafficOf({ "60": { llm: window([0.1, 0.2]) }, "300": {} });
    expect(t.windows["30"].requests).toBe(0);
    expect(t.windows["60"].requests).toBe(2);
    expect(t.windows["300"].requests).toBe(0);
    expect(v.safeParse(TrafficSchema, t).success).toBe(true);
  });
});

describe("merged traffic of several replicas", () => {
  it("is the traffic of their windows merged window by window", () => {
    const a = { "60": { llm: window([0.03, 0.03]) }, "300": { llm: window([0.03]) } };
    const b = { "60": { llm: window([7]) } };
    const t = mergedTraffic([a, b]);
    expect(t).toEqual(trafficOf({ "60": { llm: mergeLlmWindows([a["60"].llm, b["60"].llm]) }, "300": a["300"] }));
    expect(t.windows["60"].requests).toBe(3);
    expect(t.windows["30"].requests).toBe(0);
  });
});

describe("an agent's llm windows on the wire", () => {
  const stats = (llm: unknown) => ({
    type: "stats",
    at: 0,
    services: [
      {
        service: "llama",
        windows: {
          "30": { requests: 0, request_time: 0 },
          "60": { requests: 1, request_time: 0.1, llm },
          "300": { requests: 1, request_time: 0.1 },
        },
      },
    ],
  });
  const firstIssue = (llm: unknown) => {
    const result = v.safeParse(AgentMessage, stats(llm));
    return result.success ? null : formatIssue(fromValibot(result.issues)[0]!);
  };

  it("takes a window with trimmed histograms", () => {
    expect(firstIssue(window([0.1]))).toBeNull();
  });

  it.each<[string, (w: LlmWindow) => void, string]>([
    [
      "a TTFT histogram longer than its bounds",
      (w) => (w.ttft.counts = Array(TTFT_BOUNDS.length + 2).fill(0)),
      `services[0].windows.60.llm.ttft.counts: expected at most ${TTFT_BOUNDS.length + 1} buckets`,
    ],
    [
      "an ITL histogram with TTFT's length",
      (w) => (w.itl.counts = Array(TTFT_BOUNDS.length + 1).fill(0)),
      `services[0].windows.60.llm.itl.counts: expected at most ${TPOT_BOUNDS.length + 1} buckets`,
    ],
    ["a negative count", (w) => (w.ttft.counts = [1, -1]), "services[0].windows.60.llm.ttft.counts[1]:"],
    ["a fractional count", (w) => (w.duration.counts = [0.5]), "services[0].windows.60.llm.duration.counts[0]:"],
    ["a negative sum", (w) => (w.tpot.sum = -1), "services[0].windows.60.llm.tpot.sum:"],
    ["negative errors", (w) => (w.errors = -1), "services[0].windows.60.llm.errors:"],
    ["negative tokens", (w) => (w.tokens.output = -3), "services[0].windows.60.llm.tokens.output:"],
  ])("refuses %s, naming the field", (_label, spoil, message) => {
    const w = window([0.1]);
    spoil(w);
    expect(firstIssue(w)).toContain(message);
  });
});
