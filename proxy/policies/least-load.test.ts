import { describe, expect, it } from "vitest";
import { LEAST_LOAD_DEFAULTS } from "../../schema/router.ts";
import { createPolicy } from "./index.ts";
import { LeastLoad } from "./least-load.ts";
import type { EngineLoad } from "./policy.ts";

interface W {
  name: string;
  inFlight: number;
  engine?: EngineLoad | null;
}
const engine = (waiting: number, kvUsage: number | null, at = 1000, running = 0, inFlightAtScrape = 0): EngineLoad => ({
  running,
  waiting,
  kvUsage,
  inFlightAtScrape,
  at,
});
const w = (name: string, inFlight: number, e?: EngineLoad | null): W => ({ name, inFlight, engine: e });

describe("least_load (SMG's expected wait)", () => {
  it("scores (waiting × p̄ + picks since the scrape × p̄) / throughput + λ·k/(1−k)", () => {
    const p = new LeastLoad<W>({ ...LEAST_LOAD_DEFAULTS });
    const a = w("a", 0, engine(2, 0.5));
    // 2 × 1024 / 2000 + 0.15 × 0.5 / 0.5
    expect(p.score(a, true)).toBeCloseTo(1.024 + 0.15, 9);
    // KV usage clamps at 0.999 (the barrier is finite) and below at 0; none exported counts as 0.
    expect(p.score(w("b", 0, engine(0, 1.5)), true)).toBeCloseTo((0.15 * 0.999) / 0.001, 6);
    expect(p.score(w("c", 0, engine(0, -1)), true)).toBe(0);
    expect(p.score(w("d", 0, engine(1, null)), true)).toBeCloseTo(0.512, 9);
  });

  it("prefers the shorter queue, then the lower KV pressure; ties go to the first", () => {
    const p = new LeastLoad<W>({ ...LEAST_LOAD_DEFAULTS });
    expect(p.select([w("a", 0, engine(3, 0.1)), w("b", 9, engine(1, 0.1))]).name).toBe("b");
    expect(p.select([w("a", 0, engine(0, 0.9)), w("b", 0, engine(0, 0.2))]).name).toBe("b");
    const q = new LeastLoad<W>({ ...LEAST_LOAD_DEFAULTS });
    expect(q.select([w("a", 5, engine(0, 0.3)), w("b", 0, engine(0, 0.3))]).name).toBe("a");
  });

  it("credits p̄ per pick until the replica's next scrape, so a stale scrape water-fills", () => {
    const p = new LeastLoad<W>({ ...LEAST_LOAD_DEFAULTS });
    const a = w("a", 0, engine(0, 0));
    const b = w("b", 0, engine(1, 0));
    // a: 0, b: 0.512 → a; a now 0.512 = b → a (first on a tie); a 1.024 → b.
    expect([0, 1, 2].map(() => p.select([a, b]).name)).toEqual(["a", "a", "b"]);
    // A fresh scrape of a (new `at`) resets its credit.
    a.engine = engine(0, 0, 2000);
    expect(p.select([a, b]).name).toBe("a");
  });

  it("scores a replica without a scrape by in-flight × p̄ / throughput while peers have one", () => {
    const p = new LeastLoad<W>({ ...LEAST_LOAD_DEFAULTS });
    const dark = w("dark", 2, null);
    expect(p.score(dark, true)).toBeCloseTo((2 * 1024) / 2000, 9);
    // 2 in flight ≈ 1.024 s against a peer's 3 queued (1.536 s).
    expect(p.select([w("lit", 0, engine(3, 0)), dark]).name).toBe("dark");
  });

  it("is join-shortest-queue on in-flight when no replica has a scrape (first on a tie)", () => {
    const p = createPolicy<W>({ type: "sglang", policy: "least_load" }, []);
    expect(p.name).toBe("least_load");
    expect(p.needsText).toBe(false);
    expect(p.select([w("a", 5), w("b", 1), w("c", 1)], "", 0).name).toBe("b");
  });

  it("takes its tunables from the router", () => {
    const p = new LeastLoad<W>({
      least_load_kv_pressure_weight: 1,
      least_load_default_throughput: 100,
      least_load_mean_prefill_tokens: 10,
    });
    expect(p.score(w("a", 0, engine(5, 0.5)), true)).toBeCloseTo(0.5 + 1, 9);
  });
});
