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
 *    `server.address`, `client.address`, and `gateplane.request_id`; when they say something,
 *    body sizes (non-zero) and `gateplane.*` (project, service, replica, a PD request's prefill replica, retries when some,
 *    rate-limit decision, estimated tokens, incomplete);
 *  - status ERROR with `error.type` for a 5xx (the status code) and for a response that ended
 *    early or never started (`incomplete`); 4xx leave the status unset (HTTP server conventions).
 */
import type { ExchangeRecord } from "./exchange-record.ts";
import { jsonString } from "./json-text.ts";

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

// Spans are written out as JSON text (keys are constants; values escaped by `jsonString`):
// a fraction of the time JSON.stringify takes over the same span built as objects.
const s = (key: string, value: string) => `{"key":"${key}","value":{"stringValue":${jsonString(value)}}}`;
const i = (key: string, value: number) => `{"key":"${key}","value":{"intValue":"${Math.round(value)}"}}`;
const d = (key: string, value: number) =>
  Number.isFinite(value) ? `{"key":"${key}","value":{"doubleValue":${value}}}` : s(key, String(value));
const b = (key: string, value: boolean) => `{"key":"${key}","value":{"boolValue":${value}}}`;

/** `gen_ai.operation.name` of an LLM request, from its path; null for any other request. */
export function operationName(path: string): string | null {
  if (path.endsWith("/chat/completions")) return "chat";
  if (path.endsWith("/completions") || path.endsWith("/generate")) return "text_completion";
  if (path.endsWith("/embeddings")) return "embeddings";
  return null;
}

/**
 * Unix nanoseconds as a decimal string, to the microsecond (a time in milliseconds carries no
 * finer than about 0.2 µs, and a double of nanoseconds since the epoch is off by up to 256 ns).
 * Written as seconds and the nanoseconds within them: small integers, quick to print.
 */
function nanos(ms: number, plusSeconds = 0): string {
  const micros = Math.round(ms * 1000 + plusSeconds * 1e6) - Math.floor(ms / 1000) * 1e6;
  const second = Math.floor(ms / 1000) + Math.floor(micros / 1e6);
  const within = (micros % 1e6) * 1000;
  return `${second}${within < 1e8 ? String(within).padStart(9, "0") : within}`;
}

/** One sampled request's span (`record.trace` set) in the JSON encoding, made when the record arrives. */
export function encodeSpan(r: ExchangeRecord): string {
  const trace = r.trace!;
  const operation = operationName(r.path);
  const attributes = [
    s("http.request.method", r.method),
    s("url.path", r.path),
    s("server.address", r.host),
    s("client.address", r.clientAddress),
    s("gateplane.request_id", r.requestId),
  ];
  if (r.status !== 0) attributes.push(i("http.response.status_code", r.status));
  // What is zero says nothing: left out (every attribute is some 60 bytes in every span).
  if (r.bytesIn > 0) attributes.push(i("http.request.body.size", r.bytesIn));
  if (r.bytesOut > 0) attributes.push(i("http.response.body.size", r.bytesOut));
  if (r.retries > 0) attributes.push(i("gateplane.retries", r.retries));
  if (r.project !== null) attributes.push(s("gateplane.project", r.project));
  if (r.service !== null) attributes.push(s("gateplane.service", r.service));
  if (r.replica !== null) attributes.push(s("gateplane.replica", r.replica));
  if (r.prefillReplica !== undefined) attributes.push(s("gateplane.prefill_replica", r.prefillReplica));
  if (r.rateLimit !== null) attributes.push(s("gateplane.rate_limit", r.rateLimit));
  if (r.incomplete) attributes.push(b("gateplane.incomplete", true));
  let events = "";
  if (operation !== null) {
    attributes.push(s("gen_ai.operation.name", operation));
    if (r.model !== null) attributes.push(s("gen_ai.request.model", r.model));
    if (r.inputTokens !== null) attributes.push(i("gen_ai.usage.input_tokens", r.inputTokens));
    if (r.outputTokens !== null) {
      attributes.push(i("gen_ai.usage.output_tokens", r.outputTokens));
      if (r.tokensEstimated) attributes.push(b("gateplane.tokens_estimated", true));
    }
    if (r.ttft !== null) {
      attributes.push(d("gen_ai.server.time_to_first_token", r.ttft));
      events = `,"events":[{"timeUnixNano":"${nanos(r.time, r.ttft)}","name":"gen_ai.first_token"}]`;
    }
    if (r.tpot !== null) attributes.push(d("gen_ai.server.time_per_output_token", r.tpot));
  }
  const failed = r.status >= 500 || r.status === 0 || r.incomplete;
  if (failed) attributes.push(s("error.type", r.status >= 500 ? String(r.status) : "incomplete"));
  const name =
    operation !== null
      ? r.model !== null
        ? `${operation} ${r.model}`
        : operation
      : r.service !== null
        ? `${r.method} ${r.service}`
        : r.method;
  const flags = (trace.sampled ? 1 : 0) | HAS_IS_REMOTE | (trace.parentSpanId !== null ? IS_REMOTE : 0);
  const message = r.status >= 500 ? `HTTP ${r.status}` : "the response did not complete";
  const status = failed ? `{"code":${STATUS_CODE_ERROR},"message":${JSON.stringify(message)}}` : "{}";
  return (
    `{"traceId":"${trace.traceId}","spanId":"${trace.spanId}",` +
    (trace.parentSpanId !== null ? `"parentSpanId":"${trace.parentSpanId}",` : "") +
    (trace.traceState !== "" ? `"traceState":${jsonString(trace.traceState)},` : "") +
    `"name":${jsonString(name)},"kind":${SPAN_KIND_SERVER},"startTimeUnixNano":"${nanos(r.time)}",` +
    `"endTimeUnixNano":"${nanos(r.time, r.duration)}","attributes":[${attributes.join(",")}]${events},` +
    `"flags":${flags},"status":${status}}`
  );
}

/** The span as an object, as a receiver decodes it (tests). */
export function spanOf(r: ExchangeRecord): Record<string, unknown> {
  return JSON.parse(encodeSpan(r)) as Record<string, unknown>;
}

/** The start of a request body, up to its first span, for `resource`. */
export function bodyPrefix(resource: readonly KeyValue[]): Buffer {
  return Buffer.from(
    `{"resourceSpans":[{"resource":{"attributes":${JSON.stringify(resource)}},` +
      `"scopeSpans":[{"scope":{"name":"gateplane"},"spans":[`,
  );
}

/** The end of a request body, after its last span. */
export const BODY_SUFFIX = Buffer.from("]}]}]}");

/** One OTLP/HTTP JSON request body for `records`, under one resource and the `gateplane` scope (tests). */
export function exportRequest(records: readonly ExchangeRecord[], resource: readonly KeyValue[]): string {
  return `${bodyPrefix(resource).toString()}${records.map(encodeSpan).join(",")}${BODY_SUFFIX.toString()}`;
}
