import { describe, expect, it } from "vitest";
import type { EngineReading } from "./engine-reading.ts";
import { ReplicaScrape } from "./replica-scrape.ts";

const reading = (fields: Partial<EngineReading>): EngineReading => ({
  engine: "vllm",
  running: 3,
  waiting: 2,
  kvUsage: 0.5,
  prefixCounters: null,
  prefixGauge: null,
  ...fields,
});

describe("a replica's scrape", () => {
  it("reports nothing but its failed state before a good read", () => {
    const r = new ReplicaScrape("llm", "a", "http://h:1", null);
    r.error = "connect ECONNREFUSED";
    expect(r.signals(5_000)).toEqual({
      replica: "a",
      engine: null,
      state: "failed",
      running: null,
      waiting: null,
      kv_cache_usage: null,
      prefix_cache_hit_rate: null,
      age_seconds: null,
      error: "connect ECONNREFUSED",
    });
  });

  it("shows the figures while fresh, only the age once stale, and cuts a long error to the report's bound", () => {
    const r = new ReplicaScrape("llm", "a", "http://h:1", null);
    r.take(reading({}), 1_000);
    expect(r.signals(2_500)).toMatchObject({
      engine: "vllm",
      state: "fresh",
      running: 3,
      waiting: 2,
      kv_cache_usage: 0.5,
      age_seconds: 1.5,
      error: null,
    });
    r.state = "stale";
    r.error = "x".repeat(5000);
    const stale = r.signals(9_000);
    expect(stale).toMatchObject({ state: "stale", running: null, waiting: null, kv_cache_usage: null, age_seconds: 8 });
    expect(stale.error).toHaveLength(1000);
  });
});
