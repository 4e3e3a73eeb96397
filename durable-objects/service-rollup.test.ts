import { describe, expect, it } from "vitest";
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { LlmWindow } from "../schema/llm-stats.ts";
import { llmWindow } from "../test/support/llm-windows.ts";
import { MINUTE_MS, type RollupRow, rangePoints, sampleMinute } from "./service-rollup.ts";
import type { ReportingReplica } from "./service-stats.ts";

const NOW = Date.parse("2026-03-01T12:00:30Z");

function reporting(llm: LlmWindow | undefined, requests: number, at = NOW - 2_000): ReportingReplica {
  const w = { requests, request_time: 0.1, ...(llm ? { llm } : {}) };
  const empty = { requests: 0, request_time: 0 };
  const report: ServiceStats[] = [{ service: "chat", windows: { "30": empty, "60": w, "300": empty } }];
  return { stats: JSON.stringify(report), stats_at: at };
}

describe("sampleMinute", () => {
  it("merges the fresh replicas' 60 s windows into the minute's row", () => {
    const a = reporting(
      llmWindow({ duration: [0.5, 0.5], ttft: [0.2, 0.2], itl: [0.02], errors: 1, tokens: { input: 7, output: 8 } }),
      2,
    );
    const b = reporting(llmWindow({ duration: [1], ttft: [0.3], tokens: { input: 3, output: 2 } }), 1);
    const stale = reporting(llmWindow({ duration: [1] }), 1, NOW - 120_000);
    const row = sampleMinute("chat", [a, b, stale], { desired: 2, registered: 1 }, NOW)!;
    expect(row).toMatchObject({
      service: "chat",
      minute: Date.parse("2026-03-01T12:00:00Z"),
      at: NOW,
      reporting: 2,
      requests: 3,
      errors: 1,
      tokens_in: 10,
      tokens_out: 10,
      desired: 2,
      registered: 1,
    });
    expect((JSON.parse(row.ttft) as { counts: number[] }).counts.reduce((x, y) => x + y, 0)).toBe(3);
  });

  it("knows nothing of a minute without a fresh report", () => {
    expect(sampleMinute("chat", [], { desired: null, registered: 0 }, NOW)).toBeNull();
    expect(
      sampleMinute("chat", [reporting(undefined, 0, NOW - 61_000)], { desired: null, registered: 0 }, NOW),
    ).toBeNull();
  });

  it("counts a replica that reported no traffic for the service as reporting zero", () => {
    const row = sampleMinute("other", [reporting(undefined, 0)], { desired: null, registered: 0 }, NOW)!;
    expect(row).toMatchObject({ reporting: 1, requests: 0 });
  });
});

describe("rangePoints", () => {
  const minute = (m: number, requests: number, ttft: number[], desired: number | null = 1): RollupRow => {
    const llm = llmWindow({ duration: ttft.map(() => 1), ttft, itl: [0.02] });
    return {
      service: "chat",
      minute: Date.parse("2026-03-01T11:00:00Z") + m * MINUTE_MS,
      at: 0,
      reporting: 1,
      requests,
      errors: 0,
      tokens_in: requests * 10,
      tokens_out: requests * 20,
      ttft: JSON.stringify(llm.ttft),
      itl: JSON.stringify(llm.itl),
      desired,
      registered: 1,
    };
  };
  const end = Date.parse("2026-03-01T12:00:30Z");

  it("gives 1-minute points over an hour, rates per second, percentiles of the minute", () => {
    const points = rangePoints([minute(30, 60, [0.2, 0.2, 0.2]), minute(31, 120, [0.5])], "1h", end);
    expect(points).toHaveLength(2);
    expect(points[0]).toMatchObject({
      t: "2026-03-01T11:30:00.000Z",
      requests_per_second: 1,
      error_rate: 0,
      tokens_per_second: { input: 10, output: 20 },
      replicas: { desired: 1, registered: 1 },
    });
    expect(points[0]!.ttft.p50).toBeGreaterThan(0.1);
    expect(points[0]!.ttft.p50).toBeLessThanOrEqual(0.25);
    expect(points[1]!.requests_per_second).toBe(2);
  });

  it("leaves out what is older than the range", () => {
    expect(rangePoints([minute(0, 60, [0.2])], "1h", end)).toEqual([]);
  });

  it("merges minutes into 5-minute steps over a day: histograms merged, replicas as of the last minute", () => {
    const rows = [minute(30, 60, [0.01, 0.01, 0.01]), minute(31, 60, [0.9]), minute(32, 0, [], 3)];
    const [point] = rangePoints(rows, "1d", end);
    expect(point!.t).toBe("2026-03-01T11:30:00.000Z");
    // 120 requests over the three minutes it holds.
    expect(point!.requests_per_second).toBeCloseTo(120 / 180, 3);
    expect(point!.ttft.p50).toBeLessThanOrEqual(0.01);
    expect(point!.ttft.p90).toBeGreaterThan(0.75);
    expect(point!.replicas.desired).toBe(3);
  });
});
