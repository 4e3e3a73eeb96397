/**
 * @module
 * `ExchangeRecord`s for sink tests: a finished chat completion unless overridden.
 */
import type { ExchangeRecord } from "../../proxy/observe/exchange-record.ts";

export function exchangeRecord(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return {
    time: Date.UTC(2026, 11, 3, 9, 43, 43, 123),
    requestId: "5f0c6a2e9b1d4c7a8e3f2b1a0c9d8e7f",
    method: "POST",
    host: "llama.example.test",
    path: "/v1/chat/completions",
    clientAddress: "203.0.113.9",
    service: "llama",
    project: "main",
    model: "llama-3",
    replica: "r1",
    status: 200,
    retries: 0,
    rateLimit: null,
    duration: 1.284,
    ttft: 0.112,
    tpot: 0.0213,
    itl: [0.02, 0.021],
    inputTokens: 42,
    outputTokens: 56,
    tokensEstimated: false,
    bytesIn: 312,
    bytesOut: 9126,
    incomplete: false,
    trace: {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "a3ce929d0e0e4736",
      parentSpanId: "00f067aa0ba902b7",
      sampled: true,
      traceState: "",
    },
    ...overrides,
  };
}
