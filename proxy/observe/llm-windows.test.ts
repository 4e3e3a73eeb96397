import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { LlmWindow, TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import { bucketOf, LlmRing, type WindowObservation } from "./llm-windows.ts";

const T = 1_700_000_000_000;
const request = (o: Partial<WindowObservation> = {}): WindowObservation => ({
  duration: 1,
  ttft: 0.3,
  tpot: 0.02,
  itl: [0.02, 0.03],
  inputTokens: 10,
  outputTokens: 20,
  tokensEstimated: false,
  ...o,
});

describe("LLM window ring", () => {
  it("puts a value in the first bucket whose bound it does not exceed, past all of them in +Inf", () => {
    expect(bucketOf(TTFT_BOUNDS, 0)).toBe(0);
    expect(bucketOf(TTFT_BOUNDS, 0.001)).toBe(0);
    expect(bucketOf(TTFT_BOUNDS, 0.3)).toBe(TTFT_BOUNDS.indexOf(0.5));
    expect(bucketOf(TTFT_BOUNDS, 61)).toBe(TTFT_BOUNDS.length);
  });

  it("sums each window over its last N seconds in 5-second slots, in the wire's shape", () => {
    const ring = new LlmRing();
    ring.record(request(), true, true, false, T - 290_000);
    ring.record(request({ tokensEstimated: true, inputTokens: null, outputTokens: 4 }), true, true, false, T - 50_000);
    // A 5xx: its duration and tokens count, its latencies do not (not a successful LLM answer).
    ring.record(request(), true, false, true, T - 1_000);
    const w = ring.windows(T);
    expect(Object.keys(w)).toEqual(["30", "60", "300"]);
    expect(w["30"]).toEqual({
      duration: { counts: [0, 0, 0, 0, 0, 0, 0, 1], sum: 1 },
      ttft: { counts: [], sum: 0 },
      tpot: { counts: [], sum: 0 },
      itl: { counts: [], sum: 0 },
      errors: 1,
      tokens: { input: 10, output: 20, estimated_output: 0 },
    });
    expect(w["60"]!.tokens).toEqual({ input: 10, output: 24, estimated_output: 4 });
    const all = w["300"]!;
    expect(all.ttft.counts[TTFT_BOUNDS.indexOf(0.5)]).toBe(2);
    expect(all.itl.counts[TPOT_BOUNDS.indexOf(0.025)]).toBe(2);
    expect(all.itl.counts[TPOT_BOUNDS.indexOf(0.05)]).toBe(2);
    expect(all.itl.sum).toBeCloseTo(0.1, 9);
    for (const window of Object.values(w)) expect(v.safeParse(LlmWindow, window).success).toBe(true);
  });

  it("forgets a slot once it is five minutes old and reuses it, so memory stays fixed", () => {
    const ring = new LlmRing();
    ring.record(request(), true, true, false, T);
    expect(ring.windows(T + 300_000)).toEqual({});
    ring.record(request({ outputTokens: 1 }), true, true, false, T + 300_000);
    expect(ring.windows(T + 300_000)["300"]!.tokens.output).toBe(1);
  });
});
