import { describe, expect, it } from "vitest";
import { attributes } from "../../test/fakes/otlp-receiver.ts";
import { exchangeRecord } from "../../test/support/exchange-records.ts";
import { exportRequest, operationName, SPAN_KIND_SERVER, STATUS_CODE_ERROR, spanOf, str } from "./otlp-spans.ts";

type Span = ReturnType<typeof spanOf> & { attributes: never; events?: { timeUnixNano: string; name: string }[] };

describe("OTLP spans", () => {
  it("name an LLM request after its operation and model, with GenAI and HTTP attributes", () => {
    const span = spanOf(exchangeRecord()) as Span;
    expect(span).toMatchObject({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "a3ce929d0e0e4736",
      parentSpanId: "00f067aa0ba902b7",
      name: "chat llama-3",
      kind: SPAN_KIND_SERVER,
      // Sampled, parent known to be remote.
      flags: 0x301,
      status: {},
    });
    expect(attributes(span.attributes as never)).toEqual({
      "http.request.method": "POST",
      "http.response.status_code": 200,
      "url.path": "/v1/chat/completions",
      "server.address": "llama.example.test",
      "client.address": "203.0.113.9",
      "http.request.body.size": 312,
      "http.response.body.size": 9126,
      "gateplane.request_id": "5f0c6a2e9b1d4c7a8e3f2b1a0c9d8e7f",
      "gateplane.project": "main",
      "gateplane.service": "llama",
      "gateplane.replica": "r1",
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "llama-3",
      "gen_ai.usage.input_tokens": 42,
      "gen_ai.usage.output_tokens": 56,
      "gen_ai.server.time_to_first_token": 0.112,
      "gen_ai.server.time_per_output_token": 0.0213,
    });
  });

  it("carry exact unix nanoseconds as strings, and the first token as an event", () => {
    const span = spanOf(exchangeRecord({ time: 1_764_755_023_123.456, duration: 1.5, ttft: 0.25 })) as Span;
    expect(span.startTimeUnixNano).toBe("1764755023123456000");
    expect(span.endTimeUnixNano).toBe("1764755024623456000");
    expect(span.events).toEqual([{ timeUnixNano: "1764755023373456000", name: "gen_ai.first_token" }]);
  });

  it("leave out what is zero, and say retries when there were some", () => {
    const quiet = attributes(spanOf(exchangeRecord({ bytesIn: 0, bytesOut: 0 })).attributes as never);
    expect(quiet["http.request.body.size"]).toBeUndefined();
    expect(quiet["http.response.body.size"]).toBeUndefined();
    expect(quiet["gateplane.retries"]).toBeUndefined();
    expect(attributes(spanOf(exchangeRecord({ retries: 2 })).attributes as never)["gateplane.retries"]).toBe(2);
    expect(quiet["gateplane.prefill_replica"]).toBeUndefined();
    const pd = attributes(spanOf(exchangeRecord({ replica: "d1", prefillReplica: "p1" })).attributes as never);
    expect([pd["gateplane.replica"], pd["gateplane.prefill_replica"]]).toEqual(["d1", "p1"]);
  });

  it("keep nanoseconds right across a second's end", () => {
    const span = spanOf(exchangeRecord({ time: 1_764_755_023_999.5, duration: 0.0006 })) as Span;
    expect(span.startTimeUnixNano).toBe("1764755023999500000");
    expect(span.endTimeUnixNano).toBe("1764755024000100000");
    expect((spanOf(exchangeRecord({ time: 1_000, duration: 0 })) as Span).startTimeUnixNano).toBe("1000000000");
  });

  it("name other requests after method and service, and mark 5xx and cut responses as errors", () => {
    const plain = spanOf(exchangeRecord({ path: "/healthz", method: "GET", status: 503, model: null })) as Span;
    expect(plain.name).toBe("GET llama");
    expect(plain.status).toEqual({ code: STATUS_CODE_ERROR, message: "HTTP 503" });
    expect(attributes(plain.attributes as never)["error.type"]).toBe("503");
    expect(attributes(plain.attributes as never)["gen_ai.operation.name"]).toBeUndefined();
    const unrouted = spanOf(exchangeRecord({ service: null, path: "/x", method: "GET", status: 404 })) as Span;
    expect(unrouted.name).toBe("GET");
    expect(unrouted.status).toEqual({});
    const cut = spanOf(exchangeRecord({ incomplete: true, status: 200 })) as Span;
    expect(cut.status).toMatchObject({ code: STATUS_CODE_ERROR });
    expect(attributes(cut.attributes as never)["error.type"]).toBe("incomplete");
    expect(attributes(cut.attributes as never)["gateplane.incomplete"]).toBe(true);
    const gone = spanOf(exchangeRecord({ status: 0 })) as Span;
    expect(attributes(gone.attributes as never)["http.response.status_code"]).toBeUndefined();
    expect(attributes(gone.attributes as never)["error.type"]).toBe("incomplete");
  });

  it("say when a trace started at the gateway (no parent) and pass the tracestate", () => {
    const root = spanOf(
      exchangeRecord({
        trace: {
          traceId: "1".repeat(32),
          spanId: "2".repeat(16),
          parentSpanId: null,
          sampled: true,
          traceState: "rojo=1",
        },
      }),
    ) as Span & { parentSpanId?: string; traceState?: string };
    expect(root.parentSpanId).toBeUndefined();
    expect(root.traceState).toBe("rojo=1");
    expect(root.flags).toBe(0x101);
  });

  it("tell LLM operations by path", () => {
    expect(operationName("/v1/chat/completions")).toBe("chat");
    expect(operationName("/v1/completions")).toBe("text_completion");
    expect(operationName("/generate")).toBe("text_completion");
    expect(operationName("/v1/embeddings")).toBe("embeddings");
    expect(operationName("/v1/models")).toBeNull();
  });

  it("make one export request under one resource and the gateplane scope", () => {
    const body = JSON.parse(exportRequest([exchangeRecord(), exchangeRecord()], [str("service.name", "gateplane")]));
    expect(body.resourceSpans).toHaveLength(1);
    expect(body.resourceSpans[0].resource.attributes).toEqual([
      { key: "service.name", value: { stringValue: "gateplane" } },
    ]);
    expect(body.resourceSpans[0].scopeSpans[0].scope).toEqual({ name: "gateplane" });
    expect(body.resourceSpans[0].scopeSpans[0].spans).toHaveLength(2);
  });
});
