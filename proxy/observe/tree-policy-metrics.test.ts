import { describe, expect, it } from "vitest";
import { CACHE_AWARE_DEFAULTS, PREFIX_LOAD_DEFAULTS } from "../../schema/router.ts";
import { createPolicy } from "../policies/index.ts";
import { renderExposition } from "./exposition.ts";
import { treePolicyEntry, treePolicyFamilies } from "./tree-policy-metrics.ts";

const fleet = () => [
  { name: "w0", inFlight: 0 },
  { name: "w1", inFlight: 0 },
];

describe("tree policy metrics", () => {
  it("counts prefix_load's hits and misses under its own names, cache_aware's under theirs", () => {
    const ws = fleet();
    const prefix = createPolicy({ type: "sglang", policy: "prefix_load", ...PREFIX_LOAD_DEFAULTS }, ws);
    const cache = createPolicy({ type: "sglang", policy: "cache_aware", ...CACHE_AWARE_DEFAULTS }, ws);
    // The first text is held nowhere (a miss); the same text again follows it (a hit).
    for (const p of [prefix, cache]) for (let i = 0; i < 2; i++) p.select(ws, "the same system prompt", 0);
    const entries = [treePolicyEntry("chat", prefix)!, treePolicyEntry("code", cache)!];
    expect(entries.map((e) => e.policy)).toEqual(["prefix_load", "cache_aware"]);
    expect(treePolicyEntry("plain", createPolicy(null, ws))).toBeNull();

    const text = renderExposition(treePolicyFamilies(entries));
    expect(text).toContain('gateplane_prefix_load_hits_total{service="chat"} 1\n');
    expect(text).toContain('gateplane_prefix_load_misses_total{service="chat"} 1\n');
    expect(text).toContain('gateplane_prefix_load_evictions_total{service="chat"} 0\n');
    expect(text).toContain('gateplane_cache_aware_hits_total{service="code"} 1\n');
    expect(text).toContain('gateplane_cache_aware_misses_total{service="code"} 1\n');
    // Neither policy's counts leak into the other's families.
    expect(text).not.toContain('gateplane_cache_aware_hits_total{service="chat"}');
    expect(text).not.toContain('gateplane_prefix_load_hits_total{service="code"}');
  });

  it("sums a service's entries (a process's own fallback and the host's state)", () => {
    const counts = { hits: 2, misses: 1, evictions: 0 };
    const families = treePolicyFamilies([
      { service: "chat", policy: "prefix_load", counts },
      { service: "chat", policy: "prefix_load", counts },
    ]);
    const hits = families.find((f) => f.name === "gateplane_prefix_load_hits_total")!;
    expect(hits.samples).toEqual([{ labels: ["service", "chat"], value: 4 }]);
  });
});
