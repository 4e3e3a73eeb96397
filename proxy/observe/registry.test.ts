import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { configDocument } from "../../test/support/config-builder.ts";
import type { ExchangeRecord } from "./exchange-record.ts";
import { renderExposition } from "./exposition.ts";
import type { HistogramSample, MetricFamily, ScalarSample } from "./families.ts";
import { MetricsRegistry } from "./registry.ts";

const T = 1_700_000_000_000;
const record = (r: Partial<ExchangeRecord>): ExchangeRecord => ({
  time: T,
  requestId: "",
  method: "POST",
  host: "chat.example.test",
  path: "/v1/chat/completions",
  clientAddress: "127.0.0.1",
  service: "chat",
  project: "main",
  model: "llama",
  replica: "chat-0",
  status: 200,
  retries: 0,
  rateLimit: null,
  duration: 2,
  ttft: 0.3,
  tpot: 0.05,
  itl: [0.04, 0.06],
  inputTokens: 12,
  outputTokens: 35,
  tokensEstimated: false,
  bytesIn: 100,
  bytesOut: 2000,
  incomplete: false,
  trace: null,
  ...r,
});

const doc = configDocument(1, [
  { name: "chat", replicas: ["http://127.0.0.1:1"], model: { name: "llama", format: "openai", prefix: "/v1" } },
  { name: "plain", replicas: ["http://127.0.0.1:2"] },
]);

function samples(families: MetricFamily[], name: string): (ScalarSample | HistogramSample)[] {
  return families.find((f) => f.name === name)?.samples ?? [];
}
const scalar = (families: MetricFamily[], name: string) =>
  (samples(families, name) as ScalarSample[]).map((s) => [s.labels.join(","), s.value]);
const counts = (families: MetricFamily[], name: string) =>
  (samples(families, name) as HistogramSample[]).map((s) => [s.labels.join(","), s.counts.reduce((a, b) => a + b, 0)]);

describe("metrics registry", () => {
  it("turns records into series per service, replica, model and operation", () => {
    const registry = new MetricsRegistry();
    registry.retain(doc);
    registry.sink(record({}));
    registry.sink(record({ tokensEstimated: true, inputTokens: null, outputTokens: 7, path: "/v1/completions" }));
    registry.sink(
      record({ status: 503, replica: null, ttft: null, tpot: null, itl: [], inputTokens: null, outputTokens: null }),
    );
    registry.sink(
      record({
        status: 429,
        replica: null,
        rateLimit: "refused",
        ttft: null,
        tpot: null,
        itl: [],
        inputTokens: null,
        outputTokens: null,
      }),
    );
    registry.sink(record({ service: null, model: null, replica: null, status: 404 }));
    // A plain service's JSON without usage is no LLM answer: its duration counts, no TTFT.
    registry.sink(
      record({
        service: "plain",
        model: null,
        replica: "plain-0",
        path: "/",
        tpot: null,
        itl: [],
        inputTokens: null,
        outputTokens: null,
      }),
    );
    registry.sink(record({ service: "gone" }));
    const f = registry.families(() => 0);
    const chat = "service,chat,replica,chat-0,gen_ai_request_model,llama,gen_ai_operation_name,chat";
    const completions = "service,chat,replica,chat-0,gen_ai_request_model,llama,gen_ai_operation_name,text_completion";
    expect(counts(f, "gen_ai_server_time_to_first_token_seconds")).toEqual([
      [chat, 1],
      [completions, 1],
    ]);
    expect(counts(f, "gateplane_inter_token_latency_seconds")).toEqual([
      [chat, 2],
      [completions, 2],
    ]);
    expect(counts(f, "gen_ai_server_request_duration_seconds")).toEqual([
      [chat, 1],
      [completions, 1],
      ["service,plain,replica,plain-0", 1],
    ]);
    // Exact counts only in the usage histogram; the estimate is a counter of its own.
    expect(counts(f, "gen_ai_client_token_usage")).toEqual([
      [`${chat},gen_ai_token_type,input`, 1],
      [`${chat},gen_ai_token_type,output`, 1],
    ]);
    expect(scalar(f, "gateplane_tokens_total")).toEqual([
      ["service,chat,replica,chat-0,gen_ai_request_model,llama,gen_ai_token_type,input,source,usage", 12],
      ["service,chat,replica,chat-0,gen_ai_request_model,llama,gen_ai_token_type,output,source,usage", 35],
      ["service,chat,replica,chat-0,gen_ai_request_model,llama,gen_ai_token_type,output,source,estimate", 7],
    ]);
    expect(scalar(f, "gateplane_requests_total")).toEqual([
      ["service,chat,replica,chat-0,code,2xx", 2],
      ["service,chat,code,4xx", 1],
      ["service,chat,code,5xx", 1],
      ["service,plain,replica,plain-0,code,2xx", 1],
      ["code,4xx", 1],
    ]);
    expect(scalar(f, "gateplane_rate_limited_total")).toEqual([["service,chat", 1]]);
    expect(scalar(f, "gateplane_requests_in_flight")).toEqual([
      ["service,chat", 0],
      ["service,plain", 0],
    ]);
    const windows = registry.windows(T + 2_000).get("chat")!["30"]!;
    expect([windows.errors, windows.tokens]).toEqual([1, { input: 12, output: 42, estimated_output: 7 }]);
    expect(registry.windows(T).has("plain")).toBe(true);
  });

  it("follows the document: a replica or service that leaves takes its series; a new model starts anew", () => {
    const registry = new MetricsRegistry();
    registry.retain(doc);
    registry.sink(record({}));
    registry.service("chat")!.upstreamError("chat-0", "connect");
    const replaced = [{ id: "chat-new", url: "http://127.0.0.1:3" }];
    registry.retain(
      configDocument(2, [
        { name: "chat", replicas: replaced, model: { name: "llama", format: "openai", prefix: "/v1" } },
      ]),
    );
    expect(
      counts(
        registry.families(() => 0),
        "gen_ai_server_time_to_first_token_seconds",
      ),
    ).toEqual([]);
    expect(registry.service("plain")).toBeNull();
    registry.sink(record({ replica: "chat-0" }));
    registry.retain(
      configDocument(3, [
        {
          name: "chat",
          replicas: [{ id: "chat-0", url: "http://127.0.0.1:3" }],
          model: { name: "qwen", format: "openai", prefix: "/v1" },
        },
      ]),
    );
    registry.sink(record({ model: "qwen" }));
    expect(
      counts(
        registry.families(() => 0),
        "gen_ai_server_time_to_first_token_seconds",
      ),
    ).toEqual([["service,chat,replica,chat-0,gen_ai_request_model,qwen,gen_ai_operation_name,chat", 1]]);
  });

  it("renders an exposition promtool accepts", () => {
    const registry = new MetricsRegistry();
    registry.retain(doc);
    registry.sink(record({}));
    registry.sink(record({ status: 502, replica: null, incomplete: true, retries: 2 }));
    registry.service("chat")!.upstreamError("chat-0", "timeout");
    registry.service("chat")!.held++;
    const text = renderExposition(
      registry.families(
        () => 1,
        [{ service: "chat", policy: "cache_aware", counts: { hits: 1, misses: 2, balanced: 0, evictions: 0 } }],
      ),
    );
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(check.status).toBe(0);
    expect(text).toContain('gateplane_upstream_errors_total{service="chat",replica="chat-0",kind="timeout"} 1');
    expect(text).toContain('gateplane_cache_aware_misses_total{service="chat"} 2');
    expect(text).toContain('gateplane_held_requests{service="chat"} 1');
  });
});
