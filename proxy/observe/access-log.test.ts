import { describe, expect, it } from "vitest";
import { exchangeRecord } from "../../test/support/exchange-records.ts";
import { accessLogLine, PIPE_BUF } from "./access-log.ts";

describe("access log line", () => {
  it("is one JSON object per request with every field, ended by a newline", () => {
    const line = accessLogLine(exchangeRecord());
    expect(line.endsWith("}\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({
      time: "2026-12-03T09:43:43.123Z",
      request_id: "5f0c6a2e9b1d4c7a8e3f2b1a0c9d8e7f",
      client: "203.0.113.9",
      method: "POST",
      host: "llama.example.test",
      path: "/v1/chat/completions",
      status: 200,
      project: "main",
      service: "llama",
      model: "llama-3",
      replica: "r1",
      retries: 0,
      rate_limit: null,
      duration: 1.284,
      ttft: 0.112,
      tpot: 0.0213,
      input_tokens: 42,
      output_tokens: 56,
      tokens_estimated: false,
      bytes_in: 312,
      bytes_out: 9126,
      incomplete: false,
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    });
  });

  it("says null for what a request that reached no service does not have", () => {
    const parsed = JSON.parse(
      accessLogLine(
        exchangeRecord({
          service: null,
          project: null,
          model: null,
          replica: null,
          status: 404,
          ttft: null,
          tpot: null,
          inputTokens: null,
          outputTokens: null,
          duration: 0.0001234567,
          trace: null,
        }),
      ),
    );
    expect(parsed).toMatchObject({ service: null, replica: null, status: 404, ttft: null, trace_id: null });
    expect(parsed.duration).toBe(0.000123);
  });

  it("writes the time as ISO 8601 in UTC to the millisecond, across seconds", () => {
    for (const time of [Date.UTC(2026, 11, 3, 9, 43, 59, 999), Date.UTC(2026, 11, 3, 9, 44, 0, 7) + 0.75, 0]) {
      expect(JSON.parse(accessLogLine(exchangeRecord({ time }))).time).toBe(new Date(Math.floor(time)).toISOString());
    }
  });

  it("stays under PIPE_BUF bytes whatever the request carried", () => {
    const huge = exchangeRecord({
      path: `/${"é".repeat(20_000)}`,
      host: "\t".repeat(5_000),
      requestId: '"'.repeat(200),
      service: "s".repeat(5_000),
      project: "p".repeat(5_000),
      model: "m".repeat(5_000),
      replica: "r".repeat(5_000),
    });
    const line = accessLogLine(huge);
    expect(Buffer.byteLength(line)).toBeLessThan(PIPE_BUF);
    expect(JSON.parse(line).path.startsWith("/éé")).toBe(true);
  });
});
