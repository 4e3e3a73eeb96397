import { describe, expect, it } from "vitest";
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { EngineSignals } from "../schema/engine.ts";
import { type Histogram, TPOT_BOUNDS, TTFT_BOUNDS } from "../schema/llm-stats.ts";
import { parseServiceConfiguration, type ReplicaGroup } from "../schema/service.ts";
import { emptyLlmWindow } from "../schema/traffic.ts";
import { decideRole, holdAboveZero, type RoleInput } from "./role-decision.ts";
import { roleQueue, roleStats } from "./role-stats.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const MIN = 60_000;

/** Every observation in the bucket ending at `bound`: the p90 is inside it, near its top. */
function histogramAt(bounds: readonly number[], bound: number, n = 100): Histogram {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  counts[bounds.indexOf(bound)] = n;
  return { counts, sum: bound * n };
}

/** A bound of each histogram: TTFT ~2 s (over a 1 s target), ITL at most 0.025 s (under 0.05 s). */
const TTFT_SLOW = TTFT_BOUNDS.find((b) => b >= 2)!;
const ITL_FAST = [...TPOT_BOUNDS].reverse().find((b) => b <= 0.025)!;

function stats(requests: number, latency: { ttft?: Histogram; itl?: Histogram } = {}): ServiceStats {
  const llm = { ...emptyLlmWindow(), ...latency, queue: { waiting: 999, samples: 1 } };
  const w = { requests, request_time: 0.5, llm };
  return { service: "llama", windows: { "30": w, "60": w, "300": w } };
}

function groups(prefill: Record<string, unknown>, decode: Record<string, unknown>): ReplicaGroup[] {
  const c = parseServiceConfiguration({
    type: "service",
    name: "llama",
    router: { type: "sglang", pd_disaggregation: true },
    replicas: [
      { name: "prefill", count: "1..4", ...prefill },
      { name: "decode", count: "1..4", ...decode },
    ],
  });
  return c.replicas.groups!;
}

const REPLICAS = [
  { id: "p1", role: "prefill" as const },
  { id: "d1", role: "decode" as const },
];

const engine = (replica: string, waiting: number | null, state: EngineSignals["state"] = "fresh"): EngineSignals => ({
  replica,
  engine: "sglang",
  state,
  running: 1,
  waiting,
  kv_cache_usage: 0.5,
  prefix_cache_hit_rate: null,
  age_seconds: 1,
  error: null,
});

type Standing = NonNullable<RoleInput["standing"]>;
const row = (over: Partial<Standing>): Standing => ({ desired_replicas: 1, last_change_at: null, ...over });

describe("per-role decisions of a PD service", () => {
  const [prefill, decode] = groups(
    { scaling: { metric: "ttft", target: 1 } },
    { scaling: { metric: "itl", target: 0.05 } },
  ) as [ReplicaGroup, ReplicaGroup];
  const slow = stats(120, { ttft: histogramAt(TTFT_BOUNDS, TTFT_SLOW), itl: histogramAt(TPOT_BOUNDS, ITL_FAST) });

  it("TTFT over target scales prefill up; ITL under target holds decode at its minimum", () => {
    const p = decideRole({ group: prefill, stats: slow, engines: null, replicas: REPLICAS, standing: null, now: NOW });
    expect(p.desired).toBe(2);
    expect(p.registered).toBe(1);
    expect(p.reason).toMatch(/^ttft p90 [\d.]+ s over 60s \/ target 1 s → 3, step limited to ×2 → 2$/);
    const d = decideRole({ group: decode, stats: slow, engines: null, replicas: REPLICAS, standing: null, now: NOW });
    expect(d.desired).toBe(1);
    expect(d.reason).toMatch(/^itl p90 0\.02\d* s over 60s \/ target 0\.05 s → 1$/);
  });

  it("each role keeps its own delay: a prefill change 1 minute ago holds prefill, decode still moves", () => {
    const standing = row({ desired_replicas: 2, last_change_at: NOW - MIN });
    const p = decideRole({ group: prefill, stats: slow, engines: null, replicas: REPLICAS, standing, now: NOW });
    expect(p.desired).toBe(2);
    expect(p.retryAt).toBe(NOW - MIN + 300_000);
    expect(p.reason).toContain("holding 2: scale-up delay 5m not elapsed (last change 1m ago)");
    const d = decideRole({
      group: decode,
      stats: slow,
      engines: null,
      replicas: REPLICAS,
      standing: row({ desired_replicas: 3, last_change_at: NOW - 20 * MIN }),
      now: NOW,
    });
    expect(d.desired).toBe(2);
    expect(d.retryAt).toBeNull();
  });

  it("remembers the capacity of the role whose metric went over its target, under that role's key", () => {
    const p = decideRole({
      group: prefill,
      stats: slow,
      engines: null,
      replicas: REPLICAS,
      standing: row({ desired_replicas: 1, last_change_at: NOW - 20 * MIN }),
      now: NOW,
    });
    expect(JSON.parse(p.stored!)).toEqual({ for: "ttft 1", rps: 2 });
  });

  it("no stats from every gateway replica: no decision for either role", () => {
    for (const group of [prefill, decode]) {
      const r = decideRole({ group, stats: null, engines: null, replicas: REPLICAS, standing: null, now: NOW });
      expect(r.desired).toBe(1);
      expect(r.reason).toMatch(/^no decision/);
    }
  });

  it("no requests: both roles go to their minimum", () => {
    const [p0, d0] = groups(
      { count: "0..4", scaling: { metric: "ttft", target: 1, scale_down_delay: 0 } },
      { count: "0..4", scaling: { metric: "itl", target: 0.05, scale_down_delay: 0 } },
    ) as [ReplicaGroup, ReplicaGroup];
    for (const group of [p0, d0]) {
      const standing = row({ desired_replicas: 2, last_change_at: NOW - MIN });
      const r = decideRole({ group, stats: stats(0), engines: null, replicas: REPLICAS, standing, now: NOW });
      expect(r.desired).toBe(0);
    }
  });

  it("reaches zero with both roles at once: a role wanting 0 holds while the other stays above", () => {
    const [p0, d0] = groups(
      { count: "0..4", scaling: { metric: "ttft", target: 1, scale_down_delay: 0 } },
      { count: "0..4", scaling: { metric: "itl", target: 0.05, scale_down_delay: "10m" } },
    ) as [ReplicaGroup, ReplicaGroup];
    const standing = row({ desired_replicas: 2, last_change_at: NOW - MIN });
    const at = (group: ReplicaGroup) =>
      decideRole({ group, stats: stats(0), engines: null, replicas: REPLICAS, standing, now: NOW });
    const p = at(p0);
    const d = at(d0);
    expect([p.desired, d.desired]).toEqual([0, 2]);
    const held = holdAboveZero(p, "decode", d.desired, standing.last_change_at);
    expect(held).toMatchObject({ desired: 2, lastChangeAt: NOW - MIN, retryAt: null });
    expect(held.reason).toBe(
      "ttft: no requests over 60s → 0; holding 2: decode stays at 2 (both roles reach zero together)",
    );
    // Once the other role wants 0 too (this turn or standing), both go.
    expect(holdAboveZero(p, "decode", 0, standing.last_change_at)).toBe(p);
    // Other moves are never held.
    expect(holdAboveZero(d, "prefill", 0, null)).toBe(d);
  });

  it("a role with a fixed count shows a manual decision beside the scaled one", () => {
    const [, fixed] = groups({ scaling: { metric: "ttft", target: 1 } }, { count: 2 }) as [ReplicaGroup, ReplicaGroup];
    const r = decideRole({ group: fixed, stats: slow, engines: null, replicas: REPLICAS, standing: null, now: NOW });
    expect(r.desired).toBe(2);
    expect(r.reason).toBe("1 registered, brought within 2..2; manual: replicas 2");
  });
});

describe("queue per role", () => {
  const replicas = [
    { id: "p1", role: "prefill" as const },
    { id: "p2", role: "prefill" as const },
    { id: "d1", role: "decode" as const },
    { id: "c1", role: null },
  ];
  const engines = [
    engine("p1", 10),
    engine("p2", 6),
    engine("d1", 0),
    engine("c1", 50),
    engine("gone", 70),
    engine("p3", 90, "stale"),
  ];

  it("reads the fresh engine signals of the role's registered replicas only", () => {
    expect(roleQueue("prefill", engines, replicas)).toEqual({ waiting: 16, samples: 2 });
    expect(roleQueue("decode", engines, replicas)).toEqual({ waiting: 0, samples: 1 });
    expect(roleQueue("decode", [engine("d1", 5, "stale"), engine("d1", null)], replicas)).toBeNull();
    expect(roleQueue("prefill", null, replicas)).toBeNull();
  });

  it("replaces the service's windowed queue (both roles mixed) in every window, keeps requests and latencies", () => {
    const s = roleStats("prefill", stats(30), engines, replicas)!;
    for (const w of ["30", "60", "300"] as const) {
      expect(s.windows[w].requests).toBe(30);
      expect(s.windows[w].llm?.queue).toEqual({ waiting: 16, samples: 2 });
    }
    // No fresh read of the role: no queue at all (the autoscaler holds), never the service's.
    expect(roleStats("decode", stats(30), [], replicas)!.windows["60"].llm?.queue).toBeUndefined();
    expect(roleStats("decode", null, engines, replicas)).toBeNull();
  });

  it("prefill on queue scales on its own engines' waiting requests; decode on queue on its own", () => {
    const [p, d] = groups(
      { count: "2..8", scaling: { metric: "queue", target: 2 } },
      { scaling: { metric: "queue", target: 2 } },
    ) as [ReplicaGroup, ReplicaGroup];
    const pr = decideRole({ group: p, stats: stats(30), engines, replicas, standing: null, now: NOW });
    // 16 waiting over 2 prefill replicas = 8 per replica, 4× the target: ×2 at most per decision.
    expect(pr.desired).toBe(4);
    expect(pr.reason).toMatch(/^queue 8 waiting per replica over 60s \/ target 2 → 8, step limited to ×2 → 4/);
    const dr = decideRole({ group: d, stats: stats(30), engines, replicas, standing: null, now: NOW });
    expect(dr.desired).toBe(1);
  });
});
