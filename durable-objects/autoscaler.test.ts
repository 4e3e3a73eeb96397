import { describe, expect, it } from "vitest";
import type { ServiceStats } from "../schema/agent-protocol.ts";
import { parseServiceConfiguration } from "../schema/service.ts";
import { decideReplicas, evaluateScaling, formatSeconds, type ScalingInput } from "./autoscaler.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const MIN = 60_000;

/** Stats whose `window` saw `requests` (the other windows are different, to catch a wrong pick). */
function stats(requests: Partial<Record<"30" | "60" | "300", number>>): ServiceStats {
  const w = (n: number | undefined, fallback: number) => ({ requests: n ?? fallback, request_time: 0.1 });
  return {
    service: "svc",
    windows: { "30": w(requests["30"], 7), "60": w(requests["60"], 11), "300": w(requests["300"], 13) },
  };
}

function input(over: Partial<ScalingInput> & { yaml?: Record<string, unknown> } = {}): ScalingInput {
  const c = parseServiceConfiguration({
    type: "service",
    name: "svc",
    replicas: "1..4",
    scaling: { metric: "rps", target: 5 },
    ...over.yaml,
  });
  const { yaml: _, ...rest } = over;
  return {
    replicas: c.replicas,
    scaling: c.scaling,
    stats: stats({ "60": 600 }),
    current: 1,
    lastScaledAt: null,
    now: NOW,
    ...rest,
  };
}

describe("decideReplicas (dstack's RPSAutoscaler)", () => {
  it("desired = ceil(rps / target): 600 requests over 60 s = 10 rps, target 5 → 2", () => {
    const d = decideReplicas(input({ stats: stats({ "60": 600 }) }));
    expect(d).toEqual({ desired: 2, reason: "rps 10 over 60s / target 5 → 2", retryAt: null });
  });

  it("rounds up: 10.2 rps / 5 → 3", () => {
    expect(decideReplicas(input({ stats: stats({ "60": 612 }) })).desired).toBe(3);
  });

  it("clamps to max and says so", () => {
    const d = decideReplicas(input({ stats: stats({ "60": 6000 }) }));
    expect(d.desired).toBe(4);
    expect(d.reason).toBe("rps 100 over 60s / target 5 → 4 (clamped to 1..4)");
  });

  it("clamps to min (no traffic does not go below min)", () => {
    const d = decideReplicas(input({ stats: stats({ "60": 0 }), current: 2 }));
    expect(d.desired).toBe(1);
    expect(d.reason).toBe("rps 0 over 60s / target 5 → 1 (clamped to 1..4)");
  });

  it("reports fractional rps with two decimals", () => {
    const d = decideReplicas(input({ stats: stats({ "60": 744 }), current: 3 }));
    expect(d.reason).toBe("rps 12.4 over 60s / target 5 → 3");
  });

  it.each([
    ["30s", "30", 300, 2],
    ["60s", "60", 600, 2],
    ["5m", "300", 3000, 2],
  ] as const)("window %s reads the %s s window and divides by its length", (window, key, requests, desired) => {
    const d = decideReplicas(
      input({ yaml: { scaling: { metric: "rps", target: 5, window } }, stats: stats({ [key]: requests }) }),
    );
    expect(d.desired).toBe(desired);
    expect(d.reason).toContain(`over ${key}s`);
  });

  it("scales up from zero at once, whatever the delay", () => {
    const d = decideReplicas(
      input({ yaml: { replicas: "0..4" }, current: 0, stats: stats({ "60": 60 }), lastScaledAt: NOW - 1000 }),
    );
    expect(d.desired).toBe(1);
    expect(d.reason).toContain("up from zero at once");
    expect(d.retryAt).toBeNull();
  });

  it("stays at zero with min 0 and no traffic", () => {
    const d = decideReplicas(input({ yaml: { replicas: "0..4" }, current: 0, stats: stats({ "60": 0 }) }));
    expect(d).toMatchObject({ desired: 0, retryAt: null });
  });

  it("scale-up waits scale_up_delay since the last change (default 5m)", () => {
    const held = decideReplicas(input({ current: 1, stats: stats({ "60": 900 }), lastScaledAt: NOW - 3 * MIN }));
    expect(held.desired).toBe(1);
    expect(held.reason).toBe(
      "rps 15 over 60s / target 5 → 3; holding 1: scale-up delay 5m not elapsed (last change 3m ago)",
    );
    expect(held.retryAt).toBe(NOW + 2 * MIN);
    const due = decideReplicas(input({ current: 1, stats: stats({ "60": 900 }), lastScaledAt: NOW - 5 * MIN }));
    expect(due).toEqual({ desired: 3, reason: "rps 15 over 60s / target 5 → 3", retryAt: null });
  });

  it("scale-down waits scale_down_delay since the last change (default 10m)", () => {
    const held = decideReplicas(input({ current: 3, stats: stats({ "60": 300 }), lastScaledAt: NOW - 3 * MIN }));
    expect(held.desired).toBe(3);
    expect(held.reason).toBe(
      "rps 5 over 60s / target 5 → 1; holding 3: scale-down delay 10m not elapsed (last change 3m ago)",
    );
    expect(held.retryAt).toBe(NOW + 7 * MIN);
    // 9m59s is still too early; 10m is not.
    expect(
      decideReplicas(input({ current: 3, stats: stats({ "60": 300 }), lastScaledAt: NOW - 10 * MIN + 1000 })).desired,
    ).toBe(3);
    expect(
      decideReplicas(input({ current: 3, stats: stats({ "60": 300 }), lastScaledAt: NOW - 10 * MIN })).desired,
    ).toBe(1);
  });

  it("honours configured delays", () => {
    const yaml = { scaling: { metric: "rps", target: 5, scale_up_delay: "30s", scale_down_delay: 0 } };
    expect(
      decideReplicas(input({ yaml, current: 1, stats: stats({ "60": 900 }), lastScaledAt: NOW - 29_000 })).desired,
    ).toBe(1);
    expect(
      decideReplicas(input({ yaml, current: 1, stats: stats({ "60": 900 }), lastScaledAt: NOW - 30_000 })).desired,
    ).toBe(3);
    expect(decideReplicas(input({ yaml, current: 3, stats: stats({ "60": 0 }), lastScaledAt: NOW })).desired).toBe(1);
  });

  it("with no last change (never scaled) no delay applies, as dstack's pending runs", () => {
    expect(decideReplicas(input({ current: 1, stats: stats({ "60": 900 }), lastScaledAt: null })).desired).toBe(3);
    expect(decideReplicas(input({ current: 4, stats: stats({ "60": 0 }), lastScaledAt: null })).desired).toBe(1);
  });

  it("an unchanged target is no change, even within a delay", () => {
    const d = decideReplicas(input({ current: 2, stats: stats({ "60": 600 }), lastScaledAt: NOW }));
    expect(d).toEqual({ desired: 2, reason: "rps 10 over 60s / target 5 → 2", retryAt: null });
  });

  it("stats missing (a running gateway replica has not reported) → no decision, keeps current", () => {
    const d = decideReplicas(input({ current: 3, stats: null }));
    expect(d.desired).toBe(3);
    expect(d.reason).toMatch(/^no decision: not every running gateway replica reported stats/);
    expect(d.retryAt).toBeNull();
    // Even at zero: no stats is no traffic seen, not a reason to scale up.
    expect(decideReplicas(input({ yaml: { replicas: "0..2" }, current: 0, stats: null })).desired).toBe(0);
  });

  it("manual (no scaling) → clamp(current, min, max)", () => {
    const fixed = (current: number) =>
      decideReplicas({
        replicas: { min: 2, max: 2 },
        scaling: null,
        stats: null,
        current,
        lastScaledAt: null,
        now: NOW,
      });
    expect(fixed(0).desired).toBe(2);
    expect(fixed(2).desired).toBe(2);
    expect(fixed(5).desired).toBe(2);
    expect(fixed(5).reason).toBe("manual: replicas 2");
    const ranged = decideReplicas({
      replicas: { min: 1, max: 3 },
      scaling: null,
      stats: stats({}),
      current: 7,
      lastScaledAt: null,
      now: NOW,
    });
    expect(ranged).toEqual({ desired: 3, reason: "manual: replicas 1..3", retryAt: null });
  });
});

describe("evaluateScaling (from the standing decision)", () => {
  const base = (over: Partial<Parameters<typeof evaluateScaling>[0]> = {}) => {
    const { replicas, scaling } = input();
    return { replicas, scaling, stats: stats({ "60": 0 }), standing: null, registered: 0, now: NOW, ...over };
  };

  it("the service's creation is no change: the first scale-up is not held by scale_up_delay", () => {
    // Created with nothing registered: brought within 1..4, which starts no delay.
    const first = evaluateScaling(base({ stats: null }));
    expect(first).toMatchObject({ baseline: 0, desired: 1, lastChangeAt: null });
    expect(first.reason).toMatch(/^0 registered, brought within 1\.\.4; no decision/);
    // Ten seconds later traffic arrives: 900 requests over 60 s = 15 rps / 5 → 3, at once.
    const standing = { desired: first.desired, lastChangeAt: first.lastChangeAt };
    const up = evaluateScaling(base({ standing, stats: stats({ "60": 900 }), now: NOW + 10_000 }));
    expect(up).toMatchObject({ desired: 3, reason: "rps 15 over 60s / target 5 → 3", lastChangeAt: NOW + 10_000 });
    // That was a change: the next scale-up waits the default 5m from it.
    const next = { desired: 3, lastChangeAt: up.lastChangeAt };
    const held = evaluateScaling(base({ standing: next, stats: stats({ "60": 1200 }), now: NOW + 20_000 }));
    expect(held).toMatchObject({ desired: 3, lastChangeAt: NOW + 10_000, retryAt: NOW + 10_000 + 5 * MIN });
  });

  it("a changed range clamps the standing decision at once without starting a delay", () => {
    const standing = { desired: 4, lastChangeAt: null };
    const clamped = evaluateScaling(base({ standing, replicas: { min: 1, max: 2 }, stats: stats({ "60": 600 }) }));
    expect(clamped).toMatchObject({ baseline: 4, desired: 2, lastChangeAt: null });
    expect(clamped.reason).toBe("desired 4, brought within 1..2; rps 10 over 60s / target 5 → 2");
  });

  it("a first decision moved by traffic is a change", () => {
    const d = evaluateScaling(base({ registered: 1, stats: stats({ "60": 900 }) }));
    expect(d).toMatchObject({ baseline: 1, desired: 3, lastChangeAt: NOW });
  });
});

describe("formatSeconds", () => {
  it.each([
    [0, "0s"],
    [45, "45s"],
    [60, "1m"],
    [90, "1m30s"],
    [180.9, "3m"],
    [600, "10m"],
    [3600, "1h"],
    [5400, "90m"],
  ])("%s → %s", (s, text) => expect(formatSeconds(s)).toBe(text));
});

describe("replicas and scaling validation (dstack's rules)", () => {
  const parse = (extra: Record<string, unknown>) =>
    parseServiceConfiguration({ type: "service", name: "svc", ...extra });
  const issue = (extra: Record<string, unknown>) => {
    try {
      parse(extra);
    } catch (e) {
      return (e as { issues: { path: (string | number)[]; message: string }[] }).issues.map(
        (i) => `${i.path.join(".")}: ${i.message}`,
      );
    }
    return [];
  };

  it("reads a count, a range, and a range without its minimum (0)", () => {
    expect(parse({ replicas: 2 }).replicas).toEqual({ min: 2, max: 2 });
    expect(parse({ replicas: "1..4", scaling: { metric: "rps", target: 1 } }).replicas).toEqual({ min: 1, max: 4 });
    expect(parse({ replicas: "..4", scaling: { metric: "rps", target: 1 } }).replicas).toEqual({ min: 0, max: 4 });
  });

  it("needs the maximum, a range with scaling and scaling with a range", () => {
    expect(issue({ replicas: "1..", scaling: { metric: "rps", target: 1 } })).toEqual([
      'replicas: the maximum number of replicas is required (e.g. 0..4), got "1.."',
    ]);
    expect(issue({ replicas: "4..1" })[0]).toMatch(/^replicas: expected a count or a range/);
    expect(issue({ replicas: "0..2" })).toEqual(["scaling: required when replicas is a range (min..max)"]);
    expect(issue({ replicas: 2, scaling: { metric: "rps", target: 1 } })).toEqual([
      "replicas: must be a range min..max when scaling is set",
    ]);
  });

  it("checks every scaling field by name, with dstack's defaults and hold_timeout's", () => {
    const s = parse({ replicas: "0..2", scaling: { metric: "rps", target: 0.5 } }).scaling;
    expect(s).toEqual({
      metric: "rps",
      target: 0.5,
      window: 60,
      scale_up_delay: 300,
      scale_down_delay: 600,
      hold_timeout: 60,
    });
    const bad = (scaling: Record<string, unknown>) => issue({ replicas: "0..2", scaling })[0];
    expect(bad({ metric: "cpu", target: 1 })).toMatch(/^scaling\.metric: expected one of rps/);
    expect(bad({ metric: "rps", target: 0 })).toBe("scaling.target: must be greater than 0");
    expect(bad({ metric: "rps", target: 1, window: "45s" })).toMatch(
      /^scaling\.window: expected one of 30s, 60s, 300s/,
    );
    expect(bad({ metric: "rps", target: 1, scale_up_delay: "soon" })).toMatch(/^scaling\.scale_up_delay: /);
    expect(bad({ metric: "rps", target: 1, hold_timeout: "10m" })).toMatch(
      /^scaling\.hold_timeout: expected a timeout between 1s and 300s/,
    );
    expect(bad({ metric: "rps", target: 1, surprise: true })).toMatch(/^scaling\.surprise: /);
  });
});
