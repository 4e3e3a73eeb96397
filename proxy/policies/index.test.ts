import { describe, expect, it } from "vitest";
import { CACHE_AWARE_DEFAULTS, type CacheAwareOptions } from "../../schema/router.ts";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../balancer.ts";
import { CacheAware } from "./cache-aware.ts";
import { createPolicy } from "./index.ts";
import { DoneScanner } from "./load.ts";
import { combinedLoad } from "./policy.ts";
import { PowerOfTwo } from "./power-of-two.ts";
import { RandomPolicy } from "./random.ts";
import { RoundRobin } from "./round-robin.ts";
import { routingText, routingTextOf } from "./routing-text.ts";

class W {
  constructor(
    readonly name: string,
    public inFlight = 0,
  ) {}
}
const workers = (...loads: number[]) => loads.map((load, i) => new W(`w${i}`, load));
const names = (list: W[]) => list.map((w) => w.name);
/** A random source that replays `values`. */
const replay = (...values: number[]) => {
  const queue = [...values];
  return (n: number) => {
    const v = queue.shift();
    if (v === undefined || v >= n) throw new Error(`unexpected draw from [0, ${n})`);
    return v;
  };
};

describe("round_robin", () => {
  it("cycles with one counter: 0,1,2,0,1", () => {
    const p = new RoundRobin<W>();
    const ws = workers(0, 0, 0);
    expect(names(Array.from({ length: 5 }, () => p.select(ws)))).toEqual(["w0", "w1", "w2", "w0", "w1"]);
  });

  it("skips an unhealthy worker through the balancer: 0,2,0,2", () => {
    const rs = [0, 1, 2].map((i) => new ReplicaState("svc", `r${i}`, `http://127.0.0.1:${i + 1}`));
    const b = new Balancer(rs, { ...DEFAULT_HEALTH_POLICY, maxFailures: 1 }, () => {});
    b.failed(rs[1]!, 1, "ECONNREFUSED");
    expect(Array.from({ length: 4 }, () => b.pick(2, null)!.id)).toEqual(["r0", "r2", "r0", "r2"]);
    // The counter is global, not per worker: when r1 is back the sequence shifts (counter 4 → r1).
    b.succeeded(rs[1]!);
    expect(Array.from({ length: 3 }, () => b.pick(2, null)!.id)).toEqual(["r1", "r2", "r0"]);
  });

  it("is the policy when the service has no router", () => {
    expect(createPolicy(null, []).name).toBe("round_robin");
    expect(createPolicy({ type: "sglang", policy: "round_robin" }, []).name).toBe("round_robin");
  });
});

describe("random", () => {
  it("draws uniformly among the candidates", () => {
    const ws = workers(0, 0, 0);
    expect(new RandomPolicy<W>(replay(2)).select(ws).name).toBe("w2");
    const p = new RandomPolicy<W>();
    const seen = new Set(Array.from({ length: 200 }, () => p.select(ws).name));
    expect([...seen].sort()).toEqual(["w0", "w1", "w2"]);
  });
});

describe("power_of_two", () => {
  it("samples two distinct workers and takes the less loaded", () => {
    const ws = workers(5, 1, 3);
    // i1 = 0, i2 = (0 + 1 + 1) % 3 = 2: w0 (5) vs w2 (3) → w2.
    expect(new PowerOfTwo<W>(replay(0, 1)).select(ws).name).toBe("w2");
    // i1 = 2, i2 = (2 + 1 + 1) % 3 = 1: w2 (3) vs w1 (1) → w1.
    expect(new PowerOfTwo<W>(replay(2, 1)).select(ws).name).toBe("w1");
    // The second draw never lands on the first sample: over n−1 values, offset past it.
    for (let i1 = 0; i1 < 3; i1++) for (let r = 0; r < 2; r++) expect((i1 + 1 + r) % 3).not.toBe(i1);
  });

  it("keeps the first sample on a tie and takes a lone worker without drawing", () => {
    const ws = workers(2, 2);
    expect(new PowerOfTwo<W>(replay(1, 0)).select(ws).name).toBe("w1");
    expect(new PowerOfTwo<W>(replay()).select(workers(9)).name).toBe("w0");
  });
});

describe("cache_aware", () => {
  /** Ties go to the first of the tied workers unless a test scripts the draws. */
  const make = (ws: W[], options: Partial<CacheAwareOptions> = {}, random: (n: number) => number = () => 0) =>
    new CacheAware<W>({ ...CACHE_AWARE_DEFAULTS, ...options }, ws, 0, random);

  it("routes a shared prefix back to the worker that has it", () => {
    const ws = workers(0, 0, 0);
    const p = make(ws);
    const first = p.select(ws, "You are a helpful assistant. Question one?", 1);
    expect(first.name).toBe("w0"); // a miss: least loaded (a tie of three, the draw says the first)
    first.inFlight++;
    expect(p.select(ws, "Another topic entirely", 1).name).toBe("w1"); // miss → least loaded (w1)
    expect(p.select(ws, "You are a helpful assistant. Question two?", 1).name).toBe("w0"); // hit
    expect(p.counts).toMatchObject({ hits: 1, misses: 2, balanced: 0 });
  });

  it("needs a match rate strictly above cache_threshold", () => {
    const ws = workers(0, 1);
    const holding = () => {
      const p = make(ws, { cache_threshold: 0.5 });
      p.tree.insert("abcde", ws[1]!);
      return p;
    };
    // 5 of 10 code points = 0.5: not above → miss → least loaded w0.
    expect(holding().select(ws, "abcdeVWXYZ", 1).name).toBe("w0");
    // 5 of 9 > 0.5 → hit on w1 although it is busier.
    expect(holding().select(ws, "abcdeWXYZ", 1).name).toBe("w1");
  });

  it("counts the rate in code points, not UTF-16 units", () => {
    const ws = workers(0, 1);
    const p = make(ws, { cache_threshold: 0.5 });
    p.tree.insert("😀😀😀", ws[1]!);
    // 3 of 6 code points (6 of 9 units would be 0.67): a miss.
    expect(p.select(ws, "😀😀😀abc", 1).name).toBe("w0");
  });

  it("switches to the shortest queue only when both the absolute and the relative gap hold", () => {
    const text = "shared system prompt and a question";
    // w1 holds the prefix and has 100 in flight, w0 has 30: 70 > 64 and 100 > 45 → imbalanced.
    let ws = workers(30, 100);
    let p = make(ws);
    p.tree.insert(text, ws[1]!);
    expect(p.select(ws, text, 1).name).toBe("w0");
    expect(p.counts.balanced).toBe(1);
    // Still learns: the text is inserted for w0 as well.
    expect(p.tree.size(ws[0]!)).toBeGreaterThan(0);
    // 70 > 64 but 270 > 200 × 1.5 fails → balanced: the cache wins.
    ws = workers(200, 270);
    p = make(ws);
    p.tree.insert(text, ws[1]!);
    expect(p.select(ws, text, 1).name).toBe("w1");
    // Relative gap alone (10 vs 0 → 10 > 0 × 1.5) but only 10 apart: cache wins.
    ws = workers(0, 10);
    p = make(ws);
    p.tree.insert(text, ws[1]!);
    expect(p.select(ws, text, 1).name).toBe("w1");
    // abs is strict too: exactly 64 apart is balanced.
    ws = workers(0, 64);
    p = make(ws);
    p.tree.insert(text, ws[1]!);
    expect(p.select(ws, text, 1).name).toBe("w1");
  });

  it("sends a miss to the least-loaded worker, not the smallest tree (the death spiral fix)", () => {
    const ws = workers(50, 3, 3);
    const p = make(ws);
    // w0 has the smallest tree (nothing) but the most load; w1 and w2 tie on load → the draw's (first).
    p.tree.insert("x".repeat(100), ws[1]!);
    p.tree.insert("y".repeat(100), ws[2]!);
    expect(p.select(ws, "a brand new prompt", 1).name).toBe("w1");
    expect(p.select(ws, "", 1).name).toBe("w1"); // empty text: rate 0, a miss
  });

  it("breaks ties on the least load at random among the tied workers only (SGLang PR #33138)", () => {
    const ws = workers(2, 0, 5, 0, 0);
    // Three tie at 0 (w1, w3, w4): the draw is over 3 and indexes them in order.
    expect(make(ws, {}, replay(2)).select(ws, "miss one", 1).name).toBe("w4");
    expect(make(ws, {}, replay(1)).select(ws, "miss two", 1).name).toBe("w3");
    expect(make(ws, {}, replay(0)).select(ws, "miss three", 1).name).toBe("w1");
    // A single least-loaded worker takes it without a draw (replay() throws on any draw).
    const one = workers(3, 1, 2);
    expect(make(one, {}, replay()).select(one, "miss", 1).name).toBe("w1");
    // The imbalance branch uses the same rule: w1 and w2 tie at 0 against w0's 100.
    const busy = workers(100, 0, 0);
    const p = make(busy, {}, replay(1));
    p.tree.insert("hot prefix", busy[0]!);
    expect(p.select(busy, "hot prefix", 1).name).toBe("w2");
    expect(p.counts.balanced).toBe(1);
  });

  it("spreads misses of an idle fleet over every worker with the default random source", () => {
    const ws = workers(0, 0, 0, 0);
    const p = new CacheAware<W>({ ...CACHE_AWARE_DEFAULTS }, ws, 0);
    const seen = new Set<string>();
    // Each prompt is new (a miss) and nothing stays in flight: every decision is a 4-way tie.
    for (let i = 0; i < 200; i++) seen.add(p.select(ws, `${i} ${"unrelated ".repeat(i % 7)}${i * 7919}`, 1).name);
    expect([...seen].sort()).toEqual(["w0", "w1", "w2", "w3"]);
  });

  it("treats a prefix held by a worker that is not a candidate as a miss, and relearns it", () => {
    const ws = workers(0, 0, 0);
    const p = make(ws);
    p.tree.insert("prefix held by w2 only", ws[2]!);
    ws[0]!.inFlight = 1;
    const candidates = [ws[0]!, ws[1]!]; // w2 ejected
    expect(p.select(candidates, "prefix held by w2 only", 1).name).toBe("w1");
    expect(p.tree.prefixMatch("prefix held by w2 only").tenant).toBe(ws[1]);
  });

  it("evicts on the first decision after eviction_interval, to max_tree_size per worker", () => {
    const ws = workers(0);
    const p = make(ws, { eviction_interval: 10, max_tree_size: 8 });
    p.select(ws, "aaaaaaaa", 1_000);
    p.select(ws, "bbbbbbbb", 2_000);
    expect(p.tree.size(ws[0]!)).toBe(16);
    p.select(ws, "cccccccc", 9_999); // not due yet
    expect(p.counts.evictions).toBe(0);
    p.select(ws, "aaaaaaaa", 10_000); // due: evict (to 8: the two oldest leaves go), then insert
    expect(p.counts.evictions).toBe(1);
    expect(p.tree.size(ws[0]!)).toBe(16);
    expect(p.tree.prefixMatch("bbbbbbbb").matched).toBe(0);
    const off = make(ws, { eviction_interval: 0, max_tree_size: 1 });
    off.select(ws, "aaaaaaaa", 1e12);
    expect(off.counts.evictions).toBe(0);
  });

  it("forgets workers that leave and learns new ones on a new document", () => {
    const ws = workers(0, 0);
    const p = make(ws);
    p.select(ws, "hello", 1);
    const fresh = new W("w9");
    p.retain([ws[1]!, fresh]);
    expect([...p.tree.tenants()].map((w) => w.name).sort()).toEqual(["w1", "w9"]);
    expect(p.tree.prefixMatch("hello").matched).toBe(0);
  });
});

describe("routing text", () => {
  it("joins chat message texts by a space, without roles; text parts only", () => {
    expect(
      routingText({
        model: "m",
        messages: [
          { role: "system", content: "Be brief." },
          {
            role: "user",
            content: [
              { type: "text", text: "What is" },
              { type: "image_url", image_url: { url: "x" } },
              { type: "text", text: "this?" },
            ],
          },
          { role: "assistant", content: "A cat.", reasoning_content: "Looks like fur." },
        ],
      }),
    ).toBe("Be brief. What is this? A cat. Looks like fur.");
  });

  it("uses prompt for completions and text or input_ids for /generate", () => {
    expect(routingText({ prompt: "Once upon" })).toBe("Once upon");
    expect(routingText({ prompt: ["a", "b"] })).toBe("a b");
    expect(routingText({ text: "gen" })).toBe("gen");
    expect(routingText({ input_ids: [[1, 2], [3]] })).toBe("1 2 3");
    expect(routingText({ input: "embeddings" })).toBe("");
    expect(routingTextOf(Buffer.from("not json"))).toBe("");
    expect(routingTextOf(Buffer.from('{"prompt":"hé"}'))).toBe("hé");
  });
});

describe("in-flight release on data: [DONE]", () => {
  it("finds the event within a chunk and across a chunk boundary", () => {
    expect(new DoneScanner().feed(Buffer.from('data: {"x":1}\n\ndata: [DONE]\n\n'))).toBe(true);
    const s = new DoneScanner();
    expect(s.feed(Buffer.from('data: {"x":1}\n\ndata: [DO'))).toBe(false);
    expect(s.feed(Buffer.from("NE]\n\n"))).toBe(true);
    const t = new DoneScanner();
    expect(t.feed(Buffer.from("data: [DONE"))).toBe(false);
    expect(t.feed(Buffer.from("x"))).toBe(false);
    expect(t.feed(Buffer.from('data: {"text":"[DONE]"}'))).toBe(false);
  });
});

describe("load: engine (combinedLoad) for power_of_two and cache_aware", () => {
  const scraped = (name: string, inFlight: number, running: number, waiting: number, inFlightAtScrape = 0) => ({
    name,
    inFlight,
    engine: { running, waiting, kvUsage: null, inFlightAtScrape, at: 0 },
  });

  it("power_of_two compares the engine's running + waiting plus what was sent since", () => {
    // a: 1 in flight here, but its engine runs 9 (others' traffic); b: 3 in flight, engine 3.
    const ws = [scraped("a", 1, 8, 1, 1), scraped("b", 3, 3, 0, 3)];
    const draws = () => replay(0, 0);
    expect(new PowerOfTwo<(typeof ws)[number]>(draws()).select(ws).name).toBe("a");
    expect(new PowerOfTwo<(typeof ws)[number]>(draws(), combinedLoad).select(ws).name).toBe("b");
    expect(createPolicy({ type: "sglang", policy: "power_of_two" }, ws).name).toBe("power_of_two");
  });

  it("cache_aware sends a miss to the least combined load, and keeps in_flight by default", () => {
    const ws = [scraped("a", 0, 20, 5), scraped("b", 2, 2, 0, 2)];
    const engine = createPolicy({ type: "sglang", policy: "cache_aware", load: "engine" }, ws);
    expect(engine.select(ws, "new text", 0).name).toBe("b");
    const own = createPolicy({ type: "sglang", policy: "cache_aware" }, ws);
    expect(own.select(ws, "other text", 0).name).toBe("a");
  });

  it("counts a replica without a scrape by its in-flight requests", () => {
    expect(combinedLoad({ inFlight: 4 })).toBe(4);
    expect(combinedLoad({ inFlight: 4, engine: null })).toBe(4);
    expect(combinedLoad(scraped("a", 4, 2, 1, 1))).toBe(6);
  });
});
