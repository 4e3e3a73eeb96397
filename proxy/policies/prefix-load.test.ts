import { describe, expect, it } from "vitest";
import { CACHE_AWARE_DEFAULTS, PREFIX_LOAD_DEFAULTS } from "../../schema/router.ts";
import { createPolicy } from "./index.ts";
import type { EngineLoad } from "./policy.ts";
import { inFlightLoad } from "./policy.ts";
import { PrefixLoad, type PrefixLoadConfig } from "./prefix-load.ts";

interface W {
  name: string;
  inFlight: number;
  engine?: EngineLoad | null;
}
const fleet = (...loads: number[]): W[] => loads.map((inFlight, i) => ({ name: `w${i}`, inFlight }));
const options = (over: Partial<PrefixLoadConfig> = {}): PrefixLoadConfig => ({
  ...PREFIX_LOAD_DEFAULTS,
  eviction_interval: CACHE_AWARE_DEFAULTS.eviction_interval,
  max_tree_size: CACHE_AWARE_DEFAULTS.max_tree_size,
  ...over,
});
/** A random source that replays `values` (each in [0, 1)). */
const replay = (...values: number[]) => {
  const queue = [...values];
  return () => {
    const v = queue.shift();
    if (v === undefined) throw new Error("unexpected draw");
    return v;
  };
};
const text = (c: string, n: number) => c.repeat(n);

describe("prefix_load", () => {
  it("prices each replica at the characters it lacks plus request_cost × load", () => {
    const ws = fleet(0, 0, 0);
    const p = new PrefixLoad<W>(options({ prefix_load_request_cost: 100 }), ws, 0, replay(0), inFlightLoad);
    const history = text("a", 1000);
    p.tree.insert(history, ws[1]!);
    // w1 lacks 50 chars, the others 1050: w1 while its load costs under 1000 chars (9 requests)…
    ws[1]!.inFlight = 9;
    expect(p.select(ws, `${history}${text("b", 50)}`, 0).name).toBe("w1");
    // …and a less loaded replica once the load difference is worth more than the saved prefill.
    ws[1]!.inFlight = 11;
    expect(p.select(ws, `${history}${text("c", 50)}`, 0).name).toBe("w0");
    expect(p.counts).toMatchObject({ hits: 1, misses: 1 });
  });

  it("keeps a conversation where its history is while a new one with a shared prompt spreads", () => {
    const ws = fleet(0, 0);
    const p = new PrefixLoad<W>(options(), ws, 0, Math.random, inFlightLoad);
    const system = text("s", 200);
    p.tree.insert(`${system}${text("x", 2000)}`, ws[0]!);
    ws[0]!.inFlight = 3;
    // Turn 2 of the conversation on w0: 2200 chars held, 3 × 128 of load is cheaper.
    expect(p.select(ws, `${system}${text("x", 2000)}${text("y", 100)}`, 0).name).toBe("w0");
    // A new conversation sharing only the 200-char system prompt: w1 (idle) is cheaper than w0.
    expect(p.select(ws, `${system}${text("z", 100)}`, 0).name).toBe("w1");
  });

  it("matches per replica: the deeper holder of a prefix wins at equal load", () => {
    const ws = fleet(0, 0, 0);
    const p = new PrefixLoad<W>(options(), ws, 0, replay(), inFlightLoad);
    p.tree.insert(`${text("a", 300)}${text("b", 300)}`, ws[2]!);
    p.tree.insert(text("a", 300), ws[0]!);
    expect(p.select(ws, `${text("a", 300)}${text("b", 300)}c`, 0).name).toBe("w2");
  });

  it("breaks exact ties at random, so an idle fleet's misses spread", () => {
    const ws = fleet(0, 0, 0);
    const p = new PrefixLoad<W>(options(), ws, 0, replay(0.5, 0.9), inFlightLoad);
    expect(p.select(ws, "", 0).name).toBe("w1");
    expect(p.select(ws, "new text", 0).name).toBe("w2");
  });

  it("with a temperature, draws from a softmax over normalised costs", () => {
    const ws = fleet(0, 4);
    const p = new PrefixLoad<W>(options({ prefix_load_temperature: 1 }), ws, 0, replay(0.72, 0.74), inFlightLoad);
    // Costs 0 and 512 normalise to 0 and 1: weights 1 and e^-1, so w0 with p = 1/(1+e^-1) ≈ 0.731.
    expect(p.select(ws, "", 0).name).toBe("w0");
    expect(p.select(ws, "", 0).name).toBe("w1");
  });

  it("uses the engine's combined load by default, the in-flight count alone with load: in_flight", () => {
    const at = { running: 6, waiting: 4, kvUsage: 0.5, inFlightAtScrape: 1, at: 0 };
    const ws: W[] = [
      { name: "busy", inFlight: 1, engine: at },
      { name: "quiet", inFlight: 2, engine: null },
    ];
    // busy: 1 in flight here + (6 + 4 − 1) the engine had beyond this gateway's = 10; quiet: 2.
    const engine = createPolicy<W>({ type: "sglang", policy: "prefix_load" }, ws);
    expect(engine.needsText).toBe(true);
    expect(engine.select(ws, "", 0).name).toBe("quiet");
    const own = createPolicy<W>({ type: "sglang", policy: "prefix_load", load: "in_flight" }, ws);
    expect(own.select(ws, "", 0).name).toBe("busy");
  });

  it("evicts to max_tree_size and forgets replicas that leave", () => {
    const ws = fleet(0, 0);
    const p = new PrefixLoad<W>(options({ eviction_interval: 1, max_tree_size: 10 }), ws, 0, Math.random, inFlightLoad);
    p.tree.insert(text("q", 100), ws[0]!);
    p.select(ws, "", 1000);
    expect(p.counts.evictions).toBe(1);
    expect(p.tree.size(ws[0]!)).toBeLessThanOrEqual(10);
    p.retain([ws[1]!]);
    expect([...p.tree.tenants()]).toEqual([ws[1]]);
  });
});
