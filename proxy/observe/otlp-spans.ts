/**
 * @module
 * Exchange records as OTLP spans, in the JSON encoding of OTLP/HTTP (`ExportTraceServiceRequest`
 * under the protobuf JSON mapping with OTLP's exceptions: ids as lowercase hex, not base64; enums
 * as numbers; 64-bit integers, times included, as decimal strings).
 *
 * One span per sampled request, kind SERVER, from the request's arrival to its end:
 *  - LLM requests (the path ends in `/chat/completions`, `/completions`, `/embeddings` or
 *    `/generate`) are named `{gen_ai.operation.name} {model}`, e.g. `chat llama-3`, and carry the
 *    GenAI attributes: `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`,
 *    `gen_ai.usage.output_tokens`, `gen_ai.server.time_to_first_token`,
 *    `gen_ai.server.time_per_output_token` (seconds), and a `gen_ai.first_token` event at the
 *    first token's time;
 *  - other requests are named `{method} {service}` (just `{method}` when no service took it);
 *  - every span: `http.request.method`, `http.response.status_code`, `url.path`,
 *    `server.address`, `client.address`, body sizes, and `gateplane.*` (request id, project,
 *    service, replica, retries, rate-limit decision, estimated tokens, incomplete);
 *  - status ERROR with `error.type` for a 5xx (the status code) and for a response that ended
 *    early or never started (`incomplete`); 4xx leave the status unset (HTTP server conventions).
 */
import type { ExchangeRecord } from "./exchange-record.ts";

export type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean };
export interface KeyValue {
  key: string;
  value: AnyValue;
}

export const SPAN_KIND_SERVER = 2;
export const STATUS_CODE_ERROR = 2;
/** Span flags: the W3C sampled bit, and whether the parent is remote (bits 8 and 9). */
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

export const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): KeyValue => ({ key, value: { intValue: String(Math.round(value)) } });
const double = (key: string, value: number): KeyValue => ({ key, value: { doubleValue: value } });
const bool = (key: string, value: boolean): KeyValue => ({ key, value: { boolValue: value } });

/** `gen_ai.operation.name` of an LLM request, from its path; null for any other request. */
export function operationName(path: string): string | null {
  if (path.endsWith("/chat/completions")) return "chat";
  if (path.endsWith("/completions") || path.endsWith("/generate")) return "text_completion";
  if (path.endsWith("/embeddings")) return "embeddings";
  return null;
}

/**
 * Unix nanoseconds as a decimal string, to the microsecond: a double of nanoseconds since the epoch
 * is off by up to 256 ns, and one of milliseconds carries no finer than about 0.2 µs.
 */
function nanos(ms: number, plusSeconds = 0): string {
  const whole = Math.floor(ms);
  const micros = Math.round((ms - whole) * 1e3 + plusSeconds * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(micros) * 1_000n).toString();
}

/** The span of one sampled request (`record.trace` set). */
export function spanOf(r: ExchangeRecord): Record<string, unknown> {
  const trace = r.trace!;
  const operation = operationName(r.path);
  const attributes: KeyValue[] = [
    str("http.request.method", r.method),
    str("url.path", r.path),
    str("server.address", r.host),
    str("client.address", r.clientAddress),
    str("gateplane.request_id", r.requestId),
    int("http.request.body.size", r.bytesIn),
    int("http.response.body.size", r.bytesOut),
    int("gateplane.retries", r.retries),
  ];
  if (r.status !== 0) attributes.push(int("http.response.status_code", r.status));
  if (r.project !== null) attributes.push(str("gateplane.project", r.project));
  if (r.service !== null) attributes.push(str("gateplane.service", r.service));
  if (r.replica !== null) attributes.push(str("gateplane.replica", r.replica));
  if (r.rateLimit !== null) attributes.push(str("gateplane.rate_limit", r.rateLimit));
  if (r.incomplete) attributes.push(bool("gateplane.incomplete", true));
  const events: Record<string, unknown>[] = [];
  if (operation !== null) {
    attributes.push(str("gen_ai.operation.name", operation));
    if (r.model !== null) attributes.push(str("gen_ai.request.model", r.model));
    if (r.inputTokens !== null) attributes.push(int("gen_ai.usage.input_tokens", r.inputTokens));
    if (r.outputTokens !== null) {
      attributes.push(int("gen_ai.usage.output_tokens", r.outputTokens));
      if (r.tokensEstimated) attributes.push(bool("gateplane.tokens_estimated", true));
    }
    if (r.ttft !== null) {
      attributes.push(double("gen_ai.server.time_to_first_token", r.ttft));
      events.push({ timeUnixNano: nanos(r.time, r.ttft), name: "gen_ai.first_token", attributes: [] });
    }
    if (r.tpot !== null) attributes.push(double("gen_ai.server.time_per_output_token", r.tpot));
  }
  const failed = r.status >= 500 || r.status === 0 || r.incomplete;
  if (failed) attributes.push(str("error.type", r.status >= 500 ? String(r.status) : "incomplete"));
  const name =
    operation !== null
      ? r.model !== null
        ? `${operation} ${r.model}`
        : operation
      : r.service !== null
        ? `${r.method} ${r.service}`
        : r.method;
  const span: Record<string, unknown> = {
    traceId: trace.traceId,
    spanId: trace.spanId,
    name,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: nanos(r.time),
    endTimeUnixNano: nanos(r.time, r.duration),
    attributes,
    flags: (trace.sampled ? 1 : 0) | HAS_IS_REMOTE | (trace.parentSpanId !== null ? IS_REMOTE : 0),
    status: failed
      ? { code: STATUS_CODE_ERROR, message: r.status >= 500 ? `HTTP ${r.status}` : "the response did not complete" }
      : {},
  };
  if (trace.parentSpanId !== null) span.parentSpanId = trace.parentSpanId;
  if (trace.traceState !== "") span.traceState = trace.traceState;
  if (events.length > 0) span.events = events;
  return span;
}

/** One OTLP/HTTP JSON request body: the spans of `records` under one resource and the `gateplane` scope. */
export function exportRequest(records: readonly ExchangeRecord[], resource: readonly KeyValue[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: resource },
        scopeSpans: [{ scope: { name: "gateplane" }, spans: records.map(spanOf) }],
      },
    ],
  });
}
