import { describe, expect, it } from "vitest";
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { LlmWindow } from "../schema/llm-stats.ts";
import { llmWindow } from "../test/support/llm-windows.ts";
import {
  aggregateStats,
  engineByReplica,
  engineSignals,
  healthByReplica,
  type ReportingReplica,
  replicaStats,
  STATS_MAX_AGE_MS,
  withoutLlm,
} from "./service-stats.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");

type Windows = Partial<Record<"30" | "60" | "300", { requests: number; request_time: number; llm?: LlmWindow }>>;

/** A running replica whose agent reported `windows` for `llama` (and others for another service) at `at`. */
function replica(num: number, windows: Windows | null, at = NOW - 5_000): ReportingReplica & { replica_num: number } {
  const w = (name: "30" | "60" | "300") => windows?.[name] ?? { requests: 0, request_time: 0 };
  const report: ServiceStats[] = [
    { service: "other", windows: { "30": w("30"), "60": w("60"), "300": w("300") } },
    { service: "llama", windows: { "30": w("30"), "60": w("60"), "300": w("300") } },
  ];
  return {
    replica_num: num,
    stats: windows === null ? null : JSON.stringify(report),
    stats_at: windows === null ? null : at,
  };
}

describe("aggregateStats", () => {
  it("sums requests with a request-weighted mean time, as before", () => {
    const a = replica(0, { "60": { requests: 30, request_time: 1 } });
    const b = replica(1, { "60": { requests: 10, request_time: 3 } });
    const stats = aggregateStats("llama", [a, b], NOW)!;
    expect(stats.windows["60"]).toEqual({ requests: 40, request_time: 1.5 });
    expect(stats.windows["30"]).toEqual({ requests: 0, request_time: 0 });
  });

  it("merges llm windows bucket by bucket, where any replica measured something", () => {
    const fast = llmWindow({ duration: [0.5, 0.5], ttft: [0.03, 0.03], errors: 1, tokens: { input: 10, output: 4 } });
    const slow = llmWindow({ duration: [9], ttft: [6], tokens: { input: 5, output: 100, estimated_output: 100 } });
    const a = replica(0, { "60": { requests: 2, request_time: 0.5, llm: fast } });
    const b = replica(1, { "60": { requests: 1, request_time: 9, llm: slow } });
    const stats = aggregateStats("llama", [a, b], NOW)!;
    const llm = stats.windows["60"].llm!;
    expect(llm.ttft.counts.reduce((x, y) => x + y)).toBe(3);
    expect(llm.ttft.sum).toBeCloseTo(6.06);
    expect(llm.duration.counts.reduce((x, y) => x + y)).toBe(3);
    expect(llm.errors).toBe(1);
    expect(llm.tokens).toEqual({ input: 15, output: 104, estimated_output: 100 });
    expect(stats.windows["30"].llm).toBeUndefined();
    // The reports themselves are not changed by the merge (a view reads them again).
    expect(aggregateStats("llama", [a, b], NOW)!.windows["60"].llm).toEqual(llm);
  });

  it("is null while a running replica has not reported, or its report is stale", () => {
    const fresh = replica(0, { "60": { requests: 1, request_time: 1 } });
    expect(aggregateStats("llama", [fresh, replica(1, null)], NOW)).toBeNull();
    const stale = replica(1, { "60": { requests: 1, request_time: 1 } }, NOW - STATS_MAX_AGE_MS - 1);
    expect(aggregateStats("llama", [fresh, stale], NOW)).toBeNull();
    expect(aggregateStats("llama", [], NOW)).toBeNull();
  });
});

describe("replicaStats", () => {
  it("is one replica's own windows, zeros when its report does not name the service, null when stale", () => {
    const llm = llmWindow({ duration: [1] });
    const r = replica(0, { "300": { requests: 1, request_time: 1, llm } });
    expect(replicaStats("llama", r, NOW)?.windows["300"]).toEqual({ requests: 1, request_time: 1, llm });
    expect(replicaStats("gone", r, NOW)?.windows["60"]).toEqual({ requests: 0, request_time: 0 });
    expect(replicaStats("llama", r, NOW + STATS_MAX_AGE_MS)).toBeNull();
    expect(replicaStats("llama", replica(1, null), NOW)).toBeNull();
  });
});

describe("withoutLlm", () => {
  it("keeps dstack's stats as they always were", () => {
    const llm = llmWindow({ duration: [1] });
    const stats = aggregateStats("llama", [replica(0, { "60": { requests: 1, request_time: 1, llm } })], NOW)!;
    expect(withoutLlm(stats)).toEqual({
      service: "llama",
      windows: {
        "30": { requests: 0, request_time: 0 },
        "60": { requests: 1, request_time: 1 },
        "300": { requests: 0, request_time: 0 },
      },
    });
  });
});

describe("engineSignals", () => {
  const signal = (replica: string, age: number | null, running: number | null) => ({
    replica,
    engine: "vllm" as const,
    state: age === null ? ("failed" as const) : ("fresh" as const),
    running,
    waiting: running === null ? null : 0,
    kv_cache_usage: null,
    prefix_cache_hit_rate: null,
    age_seconds: age,
    error: age === null ? "connect ECONNREFUSED" : null,
  });
  const row = (at: number, engine: ReturnType<typeof signal>[] | undefined) => ({
    stats: JSON.stringify([{ service: "llm", windows: {}, ...(engine ? { engine } : {}) }]),
    stats_at: at,
  });
  it("takes, per service replica, the freshest read over the gateway replicas (report age included)", () => {
    const now = 100_000;
    const merged = engineSignals(
      "llm",
      [
        row(now - 4000, [signal("a", 1, 5), signal("b", null, null)]),
        row(now - 1000, [signal("a", 3, 7), signal("b", 2, 1)]),
      ],
      now,
    );
    expect(merged).toEqual([{ ...signal("a", 4, 7) }, { ...signal("b", 3, 1) }]);
  });
  it("is null when no recent report carries signals", () => {
    expect(engineSignals("llm", [row(100_000, undefined)], 100_000)).toBeNull();
    expect(engineSignals("llm", [row(0, [signal("a", 1, 1)])], 100_000)).toBeNull();
  });
  it("keys the merge by service replica id for the API, without the id in the value", () => {
    const byId = engineByReplica("llm", [row(100_000, [signal("a", 1, 5)])], 100_000);
    const { replica: _, ...rest } = signal("a", 1, 5);
    expect([...byId]).toEqual([["a", rest]]);
    expect(engineByReplica("llm", [row(100_000, undefined)], 100_000).size).toBe(0);
  });
});

describe("healthByReplica", () => {
  const row = (health: unknown[]) => ({
    stats: JSON.stringify([{ service: "llm", windows: {}, health }]),
    stats_at: 99_000,
  });
  it("takes the worst state and breaker per service replica over the gateway replicas", () => {
    const merged = healthByReplica(
      "llm",
      [
        row([
          { replica: "a", state: "healthy", circuit: "closed", last_check: "pass", error: null },
          { replica: "b", state: "slow_start", circuit: "open", last_check: "pass", error: null },
        ]),
        row([{ replica: "a", state: "unhealthy", circuit: "closed", last_check: "fail", error: "503" }]),
      ],
      100_000,
    );
    expect(Object.fromEntries(merged)).toEqual({
      a: { state: "unhealthy", circuit: "closed", last_check: "fail", error: "503" },
      b: { state: "slow_start", circuit: "open", last_check: "pass", error: null },
    });
  });
});
