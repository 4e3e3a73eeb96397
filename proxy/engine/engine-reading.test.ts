import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type EngineReading, missingLoad, prefixHitRate, ReadingCollector } from "./engine-reading.ts";
import { parseExposition } from "./exposition-parser.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../../test/node/fixtures/engine-metrics/${name}`, import.meta.url), "utf8");

function read(text: string, expected: "vllm" | "sglang" | null = null): EngineReading | null {
  const collector = new ReadingCollector(expected);
  parseExposition(text, collector);
  return collector.reading();
}

describe("engine readings", () => {
  it("vLLM v1 with two engine cores: counts summed, KV averaged, v1 name preferred, counters summed", () => {
    expect(read(fixture("vllm-v1-dp2.prom"))).toEqual({
      engine: "vllm",
      running: 12,
      waiting: 4,
      kvUsage: 0.375,
      prefixCounters: { pair: 0, hits: 600, queries: 1600 },
      prefixGauge: null,
    });
  });

  it.each(["sglang-dp2.prom", "sglang-underscore.prom"])("SGLang (%s): both prefixes", (name) => {
    expect(read(fixture(name))).toEqual({
      engine: "sglang",
      running: 10,
      waiting: 2,
      kvUsage: 0.4,
      prefixCounters: { pair: 0, hits: 15000, queries: 20000 },
      prefixGauge: 0,
    });
  });

  it("falls back to v0 / deprecated names", () => {
    const text = [
      "vllm:num_requests_running 2",
      "vllm:num_requests_waiting 0",
      "vllm:gpu_cache_usage_perc 0.7",
      "vllm:gpu_prefix_cache_hit_rate 0.3",
    ].join("\n");
    expect(read(text)).toMatchObject({ kvUsage: 0.7, prefixCounters: null, prefixGauge: 0.3 });
    const aliases = "vllm:gpu_prefix_cache_hits_total 5\nvllm:gpu_prefix_cache_queries_total 10\n";
    expect(read(aliases)?.prefixCounters).toEqual({ pair: 1, hits: 5, queries: 10 });
  });

  it("detects nothing in other expositions, and ignores NaN and infinite samples", () => {
    expect(read("# TYPE http_requests_total counter\nhttp_requests_total 3\n")).toBeNull();
    expect(read("")).toBeNull();
    const r = read(
      'vllm:num_requests_running{engine="0"} NaN\nvllm:num_requests_running{engine="1"} 2\nvllm:kv_cache_usage_perc +Inf\n',
    );
    expect(r).toMatchObject({ running: 2, waiting: null, kvUsage: null });
    expect(missingLoad(r!)).toBe("vllm:num_requests_waiting");
  });

  it("detects from HELP/TYPE lines alone (an engine that has not served yet)", () => {
    expect(read("# HELP sglang_num_running_reqs The number of running requests.\n")?.engine).toBe("sglang");
  });

  it("with an expected engine, reads only its series", () => {
    const both = "sglang:num_running_reqs 9\nvllm:num_requests_running 1\nvllm:num_requests_waiting 0\n";
    expect(read(both, "vllm")).toMatchObject({ engine: "vllm", running: 1 });
    expect(read(both, null)).toMatchObject({ engine: "sglang", running: 9 });
    expect(read("sglang:num_running_reqs 9\n", "vllm")).toBeNull();
  });
});

describe("prefix-cache hit rate between scrapes", () => {
  const at = (hits: number, queries: number, pair = 0): EngineReading => ({
    engine: "vllm",
    running: 0,
    waiting: 0,
    kvUsage: null,
    prefixCounters: { pair, hits, queries },
    prefixGauge: null,
  });
  it("is the rate of hits over queries since the previous scrape", () => {
    expect(prefixHitRate(null, at(10, 20), null)).toBeNull();
    expect(prefixHitRate({ pair: 0, hits: 10, queries: 20 }, at(40, 60), null)).toBe(0.75);
  });
  it("keeps the last rate when idle, after a counter reset, or when the pair changed", () => {
    expect(prefixHitRate({ pair: 0, hits: 10, queries: 20 }, at(10, 20), 0.5)).toBe(0.5);
    expect(prefixHitRate({ pair: 0, hits: 10, queries: 20 }, at(1, 2), 0.5)).toBe(0.5);
    expect(prefixHitRate({ pair: 1, hits: 10, queries: 20 }, at(40, 60), 0.5)).toBe(0.5);
  });
  it("takes the engine's gauge without counters", () => {
    expect(prefixHitRate(null, { ...at(0, 0), prefixCounters: null, prefixGauge: 0.2 }, 0.9)).toBe(0.2);
  });
});
