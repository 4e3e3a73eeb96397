import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { formatIssue, fromValibot } from "./issues.ts";
import {
  CACHE_AWARE_DEFAULTS,
  LEAST_LOAD_DEFAULTS,
  PREFIX_LOAD_DEFAULTS,
  Router,
  RouterDocument,
  routerLoad,
  routesOnText,
} from "./router.ts";

const parse = (input: unknown) => v.parse(Router, input);
const issues = (input: unknown): string[] => {
  const r = v.safeParse(Router, input);
  if (r.success) throw new Error(`accepted ${JSON.stringify(input)}`);
  return fromValibot(r.issues).map(formatIssue);
};

describe("router: policies and their tunables", () => {
  it("fills least_load's tunables with SMG's defaults", () => {
    expect(parse({ type: "sglang", policy: "least_load" })).toEqual({
      type: "sglang",
      policy: "least_load",
      least_load_kv_pressure_weight: 0.15,
      least_load_default_throughput: 2000,
      least_load_mean_prefill_tokens: 1024,
    });
    expect(LEAST_LOAD_DEFAULTS.least_load_kv_pressure_weight).toBe(0.15);
  });

  it("fills prefix_load's tunables and the tree's budget and eviction", () => {
    expect(parse({ type: "sglang", policy: "prefix_load", prefix_load_request_cost: 64 })).toEqual({
      type: "sglang",
      policy: "prefix_load",
      eviction_interval: CACHE_AWARE_DEFAULTS.eviction_interval,
      max_tree_size: CACHE_AWARE_DEFAULTS.max_tree_size,
      prefix_load_request_cost: 64,
      prefix_load_temperature: PREFIX_LOAD_DEFAULTS.prefix_load_temperature,
    });
  });

  it("keeps cache_aware exactly as before: no load unless written", () => {
    expect(parse({ type: "sglang" })).toEqual({ type: "sglang", policy: "cache_aware", ...CACHE_AWARE_DEFAULTS });
    expect(parse({ type: "sglang", policy: "power_of_two" })).toEqual({ type: "sglang", policy: "power_of_two" });
    expect(parse({ type: "sglang", policy: "power_of_two", load: "engine" })).toEqual({
      type: "sglang",
      policy: "power_of_two",
      load: "engine",
    });
  });

  it("says which load each policy compares by default", () => {
    expect(routerLoad(parse({ type: "sglang" }))).toBe("in_flight");
    expect(routerLoad(parse({ type: "sglang", policy: "power_of_two" }))).toBe("in_flight");
    expect(routerLoad(parse({ type: "sglang", policy: "prefix_load" }))).toBe("engine");
    expect(routerLoad(parse({ type: "sglang", policy: "prefix_load", load: "engine" }))).toBe("engine");
    expect(routerLoad(null)).toBe("in_flight");
  });

  it("routes on text for the tree policies only", () => {
    expect(routesOnText(parse({ type: "sglang" }))).toBe(true);
    expect(routesOnText(parse({ type: "sglang", policy: "prefix_load" }))).toBe(true);
    expect(routesOnText(parse({ type: "sglang", policy: "least_load" }))).toBe(false);
    expect(routesOnText(null)).toBe(false);
  });

  it.each([
    [
      { policy: "cache_aware", least_load_mean_prefill_tokens: 5 },
      "router.least_load_mean_prefill_tokens",
      'applies to policy least_load only (policy is "cache_aware")',
    ],
    [
      { policy: "least_load", cache_threshold: 0.5 },
      "router.cache_threshold",
      'applies to policy cache_aware only (policy is "least_load")',
    ],
    [
      { policy: "least_load", max_tree_size: 5 },
      "router.max_tree_size",
      'applies to policies cache_aware, prefix_load only (policy is "least_load")',
    ],
    [
      { policy: "round_robin", load: "engine" },
      "router.load",
      'applies to policies cache_aware, power_of_two, prefix_load only (policy is "round_robin")',
    ],
    [
      { policy: "least_load", load: "engine" },
      "router.load",
      'applies to policies cache_aware, power_of_two, prefix_load only (policy is "least_load")',
    ],
    [
      { policy: "cache_aware", prefix_load_temperature: 1 },
      "router.prefix_load_temperature",
      'applies to policy prefix_load only (policy is "cache_aware")',
    ],
    [
      { policy: "prefix_load", balance_abs_threshold: 1 },
      "router.balance_abs_threshold",
      'applies to policy cache_aware only (policy is "prefix_load")',
    ],
  ])("refuses %o for another policy, naming the field", (router, path, message) => {
    expect(issues({ type: "sglang", ...router }).map((m) => `router.${m}`)).toEqual([`${path}: ${message}`]);
  });

  it.each([
    [
      { policy: "least_load", least_load_kv_pressure_weight: -0.1 },
      "least_load_kv_pressure_weight",
      "must be between 0 and 3600 seconds",
    ],
    [
      { policy: "least_load", least_load_default_throughput: 0 },
      "least_load_default_throughput",
      "must be above 0 and at most 1000000000 tokens per second",
    ],
    [
      { policy: "least_load", least_load_mean_prefill_tokens: 1.5 },
      "least_load_mean_prefill_tokens",
      "expected an integer, got 1.5",
    ],
    [
      { policy: "least_load", least_load_mean_prefill_tokens: 0 },
      "least_load_mean_prefill_tokens",
      `must be a whole number of tokens from 1 to ${2 ** 24}`,
    ],
    [
      { policy: "prefix_load", prefix_load_request_cost: -1 },
      "prefix_load_request_cost",
      `must be a whole number of characters from 0 to ${2 ** 24}`,
    ],
    [{ policy: "prefix_load", prefix_load_temperature: 1001 }, "prefix_load_temperature", "must be between 0 and 1000"],
    [{ policy: "prefix_load", load: "queue" }, "load", 'expected one of in_flight, engine, got "queue"'],
  ])("bounds %o", (router, path, message) => {
    expect(issues({ type: "sglang", ...router })).toEqual([`${path}: ${message}`]);
  });

  it("accepts the new tunables in a configuration document, and documents from before them", () => {
    const doc = { type: "sglang", policy: "prefix_load", prefix_load_request_cost: 10, load: "in_flight" };
    expect(v.parse(RouterDocument, doc)).toEqual(doc);
    expect(v.parse(RouterDocument, { type: "sglang", policy: "least_load" })).toEqual({
      type: "sglang",
      policy: "least_load",
    });
    expect(v.safeParse(RouterDocument, { ...doc, prefix_load_temperature: -1 }).success).toBe(false);
  });
});

describe("router: prefill/decode disaggregation", () => {
  it("fills each side's policy: policy as written, else cache_aware for prefill and power_of_two for decode", () => {
    expect(parse({ type: "sglang", pd_disaggregation: true })).toEqual({
      type: "sglang",
      policy: "cache_aware",
      pd_disaggregation: true,
      prefill_policy: "cache_aware",
      decode_policy: "power_of_two",
      ...CACHE_AWARE_DEFAULTS,
    });
    const random = parse({ type: "sglang", pd_disaggregation: true, policy: "random" });
    expect([random.prefill_policy, random.decode_policy, random.policy]).toEqual(["random", "random", "random"]);
    const both = parse({
      type: "sglang",
      pd_disaggregation: true,
      prefill_policy: "prefix_load",
      decode_policy: "least_load",
    });
    expect(both.policy).toBe("prefix_load");
    expect(both.least_load_default_throughput).toBe(LEAST_LOAD_DEFAULTS.least_load_default_throughput);
    expect(both.prefix_load_request_cost).toBe(PREFIX_LOAD_DEFAULTS.prefix_load_request_cost);
    expect(routesOnText(both)).toBe(true);
    expect(parse({ type: "sglang", pd_disaggregation: false })).toEqual({
      type: "sglang",
      policy: "cache_aware",
      ...CACHE_AWARE_DEFAULTS,
    });
  });

  it("refuses the side policies without disaggregation, and tunables neither side uses", () => {
    expect(issues({ type: "sglang", prefill_policy: "random" })).toEqual([
      "prefill_policy: applies with pd_disaggregation: true only",
    ]);
    expect(
      issues({
        type: "sglang",
        pd_disaggregation: true,
        prefill_policy: "random",
        decode_policy: "power_of_two",
        cache_threshold: 0.5,
      }),
    ).toEqual(['cache_threshold: applies to policy cache_aware only (policies are "random" and "power_of_two")']);
    expect(issues({ type: "sglang", pd_disaggregation: true, decode_policy: "nope" })[0]).toMatch(/^decode_policy: /);
  });

  it("carries the PD fields in the configuration document, absent from older ones", () => {
    const router = parse({ type: "sglang", pd_disaggregation: true });
    expect(v.parse(RouterDocument, router)).toEqual(router);
    expect(v.parse(RouterDocument, { type: "sglang", policy: "random" })).toEqual({ type: "sglang", policy: "random" });
  });
});
