import { describe, expect, it } from "vitest";
import type { ServiceStats } from "../schema/agent-protocol.ts";
import { type Histogram, type LlmWindow, quantile, TPOT_BOUNDS, TTFT_BOUNDS } from "../schema/llm-stats.ts";
import { parseServiceConfiguration } from "../schema/service.ts";
import { emptyLlmWindow } from "../schema/traffic.ts";
import { decideReplicas, type EvaluationInput, evaluateScaling, type ScalingInput } from "./autoscaler.ts";
import { DEAD_BAND } from "./latency-autoscaler.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const MIN = 60_000;

/**
 * A histogram over `bounds` whose p90 (as `quantile` estimates it) is `p90`: 1000 observations in
 * the bucket holding it, with the mass below (or above) it that puts the 90th percentile's rank there.
 */
function histogramWithP90(bounds: readonly number[], p90: number): Histogram {
  const i = bounds.findIndex((b) => p90 <= b);
  const lower = i === 0 ? 0 : bounds[i - 1]!;
  const f = (p90 - lower) / (bounds[i]! - lower);
  const counts = new Array<number>(bounds.length + 1).fill(0);
  const b = 1000;
  counts[i] = b;
  // rank 0.9·total must fall at fraction f of bucket i.
  if (f <= 0.9) counts[0] = counts[0]! + Math.round((9 - 10 * f) * b);
  else counts[bounds.length] = Math.round((f / 0.9 - 1) * b);
  return { counts, sum: p90 * 1000 };
}

interface Seen {
  ttft?: number;
  itl?: number;
  queue?: number;
}

/** An `llm` window as agents report it: p90s as given, the queue as `waiting / samples`. */
function llm(seen: Seen): LlmWindow {
  const w = emptyLlmWindow();
  if (seen.ttft !== undefined) w.ttft = histogramWithP90(TTFT_BOUNDS, seen.ttft);
  if (seen.itl !== undefined) w.itl = histogramWithP90(TPOT_BOUNDS, seen.itl);
  if (seen.queue !== undefined) w.queue = { waiting: seen.queue * 12, samples: 12 };
  return w;
}

/** Stats whose 60 s window saw `requests` and `seen`; the other windows are different on purpose. */
function stats(requests: number, seen: Seen | null): ServiceStats {
  const other = { requests: 3, request_time: 0.1, llm: llm({ ttft: 20, itl: 0.9, queue: 500 }) };
  const w = { requests, request_time: 0.1, ...(seen ? { llm: llm(seen) } : {}) };
  return { service: "svc", windows: { "30": other, "60": w, "300": other } };
}

function input(
  over: Omit<Partial<ScalingInput>, "scaling"> & { scaling?: Record<string, unknown>; range?: string } = {},
) {
  const c = parseServiceConfiguration({
    type: "service",
    name: "svc",
    replicas: over.range ?? "1..8",
    scaling: { metric: "ttft", target: 1, ...over.scaling },
  });
  const { scaling: _, range: __, ...rest } = over;
  return {
    replicas: c.replicas,
    scaling: c.scaling,
    stats: stats(600, { ttft: 1 }),
    current: 2,
    lastScaledAt: null,
    now: NOW,
    ...rest,
  } satisfies ScalingInput;
}

describe("histogramWithP90 (the fixture)", () => {
  it.each([0.3, 0.95, 2, 2.4, 7])("ttft p90 %s", (p) => {
    expect(quantile(TTFT_BOUNDS, histogramWithP90(TTFT_BOUNDS, p), 0.9)).toBeCloseTo(p, 3);
  });
});

describe("latency metrics: the rule", () => {
  it("proportional: desired = ceil(current × observed / target), reading like rps", () => {
    const d = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 1.4 }) }));
    expect(d).toEqual({ desired: 3, reason: "ttft p90 1.4 s over 60s / target 1 s → 3", retryAt: null, capacity: 5 });
  });

  it("at most ×2 per decision, then clamped to max", () => {
    const d = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 2.4 }), range: "1..3" }));
    expect(d.desired).toBe(3);
    expect(d.reason).toBe("ttft p90 2.4 s over 60s / target 1 s → 5, step limited to ×2 → 4 (clamped to 1..3)");
  });

  it("down one replica at a time while no capacity is known (the knee could be anywhere)", () => {
    const d = decideReplicas(input({ current: 8, stats: stats(600, { ttft: 0.1 }) }));
    expect(d.desired).toBe(7);
    expect(d.reason).toBe("ttft p90 0.1 s over 60s / target 1 s → 1, step limited to −1 (capacity not yet seen) → 7");
  });

  it("at most ÷2 per decision down once a capacity is known", () => {
    const d = decideReplicas(input({ current: 8, stats: stats(600, { ttft: 0.1 }), capacity: 100 }));
    expect(d.desired).toBe(4);
    expect(d.reason).toBe("ttft p90 0.1 s over 60s / target 1 s → 1, step limited to ÷2 → 4");
  });

  it.each([0.91, 0.95, 1, 1.05, 1.09])("dead band: p90 %s s at target 1 s is no change", (p) => {
    const d = decideReplicas(input({ current: 5, stats: stats(600, { ttft: p }) }));
    expect(d.desired).toBe(5);
    expect(d.reason).toMatch(/within ±10% → 5$/);
  });

  it("just outside the band moves: 1.12 up, 0.85 down", () => {
    expect(decideReplicas(input({ current: 5, stats: stats(600, { ttft: 1.12 }) })).desired).toBe(6);
    expect(decideReplicas(input({ current: 5, stats: stats(600, { ttft: 0.85 }) })).desired).toBe(5);
    expect(decideReplicas(input({ current: 8, stats: stats(600, { ttft: 0.85 }) })).desired).toBe(7);
  });

  it("clamps to min", () => {
    const d = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 0.2 }), range: "2..8" }));
    expect(d.desired).toBe(2);
    expect(d.reason).toBe("ttft p90 0.2 s over 60s / target 1 s → 1 (clamped to 2..8)");
  });

  it("itl reads the inter-token histogram (TPOT bounds), in seconds", () => {
    const d = decideReplicas(
      input({ scaling: { metric: "itl", target: 0.02 }, current: 2, stats: stats(600, { ttft: 0.1, itl: 0.035 }) }),
    );
    expect(d.desired).toBe(4);
    expect(d.reason).toBe("itl p90 0.035 s over 60s / target 0.02 s → 4");
  });

  it("queue reads waiting / samples per replica", () => {
    const d = decideReplicas(
      input({ scaling: { metric: "queue", target: 4 }, current: 2, stats: stats(600, { queue: 6.2 }) }),
    );
    expect(d.desired).toBe(4);
    expect(d.reason).toBe("queue 6.2 waiting per replica over 60s / target 4 → 4");
    // No one waiting while requests flow: fewer, one at a time while no capacity is known.
    const idle = decideReplicas(
      input({ scaling: { metric: "queue", target: 4 }, current: 4, stats: stats(600, { queue: 0 }) }),
    );
    expect(idle.desired).toBe(3);
  });

  it("reads the configured window", () => {
    const d = decideReplicas(input({ scaling: { window: "30s" }, current: 2, stats: stats(600, { ttft: 1.4 }) }));
    // The 30 s window of the fixture holds ttft 20 s (and 3 requests).
    expect(d.reason).toBe("ttft p90 20 s over 30s / target 1 s → 40, step limited to ×2 → 4");
  });
});

describe("latency metrics: zero, idle and no data", () => {
  it("up from zero at once on any request (no latency can be measured without replicas)", () => {
    const d = decideReplicas(input({ range: "0..8", current: 0, stats: stats(2, null), lastScaledAt: NOW - 1000 }));
    expect(d).toMatchObject({ desired: 1, retryAt: null });
    expect(d.reason).toBe("ttft: 2 requests over 60s at zero replicas → 1; up from zero at once");
  });

  it("stays at zero without requests", () => {
    expect(decideReplicas(input({ range: "0..8", current: 0, stats: stats(0, null) })).desired).toBe(0);
  });

  it("no requests in the window → min, after scale_down_delay", () => {
    const held = decideReplicas(input({ range: "0..8", current: 3, stats: stats(0, null), lastScaledAt: NOW - MIN }));
    expect(held.desired).toBe(3);
    expect(held.reason).toBe(
      "ttft: no requests over 60s → 0; holding 3: scale-down delay 10m not elapsed (last change 1m ago)",
    );
    const due = decideReplicas(
      input({ range: "1..8", current: 3, stats: stats(0, null), lastScaledAt: NOW - 10 * MIN }),
    );
    expect(due.desired).toBe(1);
    expect(due.reason).toBe("ttft: no requests over 60s → 0 (clamped to 1..8)");
  });

  it("requests but nothing measured → hold, saying why", () => {
    const none = decideReplicas(input({ current: 3, stats: stats(600, null) }));
    expect(none).toMatchObject({ desired: 3, retryAt: null });
    expect(none.reason).toBe("ttft: 600 requests over 60s, none with a ttft measured; holding 3");
    const noItl = decideReplicas(input({ scaling: { metric: "itl", target: 0.05 }, stats: stats(600, { ttft: 3 }) }));
    expect(noItl.desired).toBe(2);
    const noQueue = decideReplicas(input({ scaling: { metric: "queue", target: 2 }, stats: stats(600, { ttft: 3 }) }));
    expect(noQueue.desired).toBe(2);
    expect(noQueue.reason).toBe(
      "queue: 600 requests over 60s, no engine queue samples (no engine signals scraped); holding 2",
    );
  });

  it("stats missing (a gateway replica has not reported) → no decision, capacity kept", () => {
    const e = evaluateScaling({
      replicas: { min: 1, max: 8 },
      scaling: input().scaling,
      stats: null,
      standing: { desired: 3, lastChangeAt: null, capacity: 4 },
      registered: 3,
      now: NOW,
    });
    expect(e).toMatchObject({ desired: 3, capacity: 4 });
  });
});

describe("latency metrics: delays and remembered capacity", () => {
  it("scale-up waits scale_up_delay, scale-down scale_down_delay", () => {
    const up = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 1.4 }), lastScaledAt: NOW - 2 * MIN }));
    expect(up).toMatchObject({ desired: 2, retryAt: NOW + 3 * MIN });
    expect(up.reason).toMatch(/; holding 2: scale-up delay 5m not elapsed/);
    const down = decideReplicas(input({ current: 4, stats: stats(600, { ttft: 0.3 }), lastScaledAt: NOW - 9 * MIN }));
    expect(down).toMatchObject({ desired: 4, retryAt: NOW + MIN });
  });

  it("an overload on a settled window remembers rps per replica; a scale-down stays above it", () => {
    // 600 requests / 60 s = 10 rps on 2 replicas, over target: 5 rps per replica is too much.
    const over = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 1.4 }), lastScaledAt: NOW - 2 * MIN }));
    expect(over.capacity).toBe(5);
    // At 4 the floor (prefill alone) reads 0.2 s: proportional says 1, ÷2 says 2, capacity says 3.
    const d = decideReplicas(
      input({ current: 4, stats: stats(600, { ttft: 0.2 }), lastScaledAt: NOW - 10 * MIN, capacity: 5 }),
    );
    expect(d.desired).toBe(3);
    expect(d.reason).toBe(
      "ttft p90 0.2 s over 60s / target 1 s → 1, but 10 rps needs 3 below the 5 rps per replica at which ttft last passed its target → 3",
    );
  });

  it("a window that saw another count teaches nothing", () => {
    const d = decideReplicas(input({ current: 2, stats: stats(600, { ttft: 1.4 }), lastScaledAt: NOW - 30_000 }));
    expect(d.capacity).toBeNull();
  });

  it("within target at more rps per replica than remembered: forgotten (the workload got lighter)", () => {
    const d = decideReplicas(input({ current: 2, stats: stats(1200, { ttft: 0.5 }), capacity: 5 }));
    // 10 rps per replica at half the target: 5 is no knee any more.
    expect(d.capacity).toBeNull();
    expect(d.desired).toBe(1);
  });

  it("rps never remembers a capacity", () => {
    const e = evaluateScaling({
      replicas: { min: 1, max: 8 },
      scaling: input({ scaling: { metric: "rps", target: 5 } }).scaling,
      stats: stats(600, { ttft: 3 }),
      standing: { desired: 1, lastChangeAt: null, capacity: 4 },
      registered: 1,
      now: NOW,
    });
    expect(e).toMatchObject({ desired: 2, capacity: null, reason: "rps 10 over 60s / target 5 → 2" });
  });
});

/**
 * A closed loop on an analytic fleet: each replica an M/M/1 queue in front of a fixed prefill
 * (TTFT p90 = prefill + the queue's p90 wait), evaluated every 5 s on simulated time. The window is
 * the load of the moment: the delays (≥ the window) let each change show in full before the next.
 */
function closedLoop(opts: {
  load: (t: number) => number;
  seconds: number;
  range?: string;
  seed?: number;
  noise?: number;
  scaling?: Record<string, unknown>;
}) {
  const prefill = 0.2;
  const perReplica = 10; // service rate μ (requests per second)
  const ttft = (rps: number, n: number) => {
    const rho = rps / (n * perReplica);
    if (rho >= 0.99) return 60;
    // M/M/1 sojourn is exponential with rate μ(1 − ρ): its p90 is ln 10 / (μ(1 − ρ)).
    return prefill + Math.log(10) / (perReplica * (1 - rho));
  };
  let a = (opts.seed ?? 1) >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const c = parseServiceConfiguration({
    type: "service",
    name: "svc",
    replicas: opts.range ?? "1..20",
    scaling: { metric: "ttft", target: 1, scale_up_delay: "1m", scale_down_delay: "2m", ...opts.scaling },
  });
  let standing: EvaluationInput["standing"] = null;
  const history: { t: number; desired: number }[] = [];
  for (let t = 0; t <= opts.seconds; t += 5) {
    const n = standing?.desired ?? 1;
    const jitter = (amount: number) => 1 + amount * (2 * rand() - 1);
    // A window's request count varies little (60 s of Poisson arrivals at tens per second: ~3 %);
    // its p90 estimate varies more.
    const rps = opts.load(t) * jitter((opts.noise ?? 0) / 3);
    const p90 = Math.min(60, ttft(rps, n) * jitter(opts.noise ?? 0));
    const e = evaluateScaling({
      replicas: c.replicas,
      scaling: c.scaling,
      stats: stats(Math.round(rps * 60), { ttft: p90 }),
      standing,
      registered: n,
      now: NOW + t * 1000,
    });
    standing = { desired: e.desired, lastChangeAt: e.lastChangeAt, capacity: e.capacity };
    if (e.desired !== n) history.push({ t, desired: e.desired });
  }
  return { history, final: standing!.desired, ttft };
}

describe("latency metrics: closed loop on a fleet whose latency grows with load", () => {
  it("a step up reaches the fewest replicas that keep p90 within the band, then holds", () => {
    const { history, final, ttft } = closedLoop({ load: (t) => (t < 600 ? 20 : 60), seconds: 3600 });
    // Fewest: n within the band, n − 1 past it.
    expect(ttft(60, final)).toBeLessThanOrEqual(1 + DEAD_BAND);
    expect(ttft(60, final - 1)).toBeGreaterThan(1 + DEAD_BAND);
    const after = history.filter((h) => h.t >= 600);
    // Reached within a few delays (up 1m each), and no change after.
    expect(after.at(-1)!.t).toBeLessThan(600 + 10 * 60);
    expect(after.length).toBeLessThanOrEqual(4);
  });

  it("a drop scales in once scale_down_delay has passed, to the fewest replicas again", () => {
    const { history, final, ttft } = closedLoop({ load: (t) => (t < 1800 ? 60 : 20), seconds: 5400 });
    const drop = history.filter((h) => h.t >= 1800);
    expect(drop.length).toBeGreaterThan(0);
    expect(drop[0]!.desired).toBeLessThan(history.filter((h) => h.t < 1800).at(-1)!.desired);
    expect(ttft(20, final)).toBeLessThanOrEqual(1 + DEAD_BAND);
    expect(final).toBeLessThanOrEqual(4);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])("steady noisy load never flaps once settled (seed %i)", (seed) => {
    const level = 15 + seed * 7;
    const { history } = closedLoop({ load: () => level, seconds: 6 * 3600, seed, noise: 0.1 });
    // Settling takes a few moves (×2 steps from 1 may overshoot, one overload may teach the knee),
    // all within the first quarter hour; the next 5¾ hours have none.
    expect(history.filter((h) => h.t >= 900)).toEqual([]);
    expect(history.length).toBeLessThanOrEqual(8);
  });
});
