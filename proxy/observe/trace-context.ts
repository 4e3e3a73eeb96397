/**
 * @module
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) at the gateway: what a request's
 * `traceparent` and `tracestate` become on the way to the replica.
 *
 * With tracing configured (`observability.tracing`) the gateway takes part in the trace: its own
 * span (a new span id) is the parent the replica sees, `00-<trace id>-<gateway span>-<flags>`.
 *  - A valid `traceparent` (version 00 exactly; a higher version read by the spec's forward-
 *    compatible rule, then sent as 00) continues the client's trace and follows its sampled flag.
 *    Its `tracestate` passes on as received, combined from several fields, truncated by whole
 *    entries beyond 512 characters (entries over 128 characters first, then from the end).
 *  - No `traceparent`, or an invalid one (bad format, all-zero ids, version `ff`, sent twice):
 *    a new trace, sampled with the gateway's `sample_ratio`; the `tracestate` is dropped with it.
 *
 * Without tracing the gateway records nothing, so it only forwards (the spec's forwarding mode):
 * a valid `traceparent` and its `tracestate` pass unchanged (the replica's parent is then the
 * client's span, a trace without a gap), an invalid one is dropped, and none is made up. A
 * made-up one would steer the replicas' own samplers: OpenTelemetry's default (parent-based)
 * drops every span under an unsampled parent, and a sampled one would force recording at 100 %.
 * The request id (`ids.ts`) correlates the gateway's log with the replicas' in any case.
 */
import type { TraceIds } from "./exchange-record.ts";
import { newSpanId, newTraceId } from "./ids.ts";

/** How the gateway treats trace context (from `observability.tracing`, `sinks.ts`). */
export interface TracePolicy {
  /** The gateway records spans: it takes part in traces (else it only forwards them). */
  readonly participate: boolean;
  /** Of the traces the gateway starts, the share it samples (0 to 1). */
  readonly sampleRatio: number;
}

/** No tracing configured: valid trace context passes unchanged, none is created. */
export const FORWARD_ONLY: TracePolicy = { participate: false, sampleRatio: 0 };

/** A `traceparent` field that came more than once (invalid: which one would be the parent?). */
export const REPEATED = "";

export interface TraceParent {
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
/** Version, trace id, parent id, flags; what follows the flags is the version's business. */
const FIELDS = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;

/** Reads a `traceparent` value; null when invalid (the caller then starts a new trace). */
export function parseTraceparent(value: string): TraceParent | null {
  if (value.length < 55 || !FIELDS.test(value)) return null;
  const version = value.slice(0, 2);
  if (version === "ff") return null;
  // Version 00 is exactly its four fields; a higher one may add fields after a dash.
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return null;
  const flags = Number.parseInt(value.slice(53, 55), 16);
  return { traceId, parentId, sampled: (flags & 1) === 1 };
}

export const MAX_TRACESTATE_LENGTH = 512;
const LONG_ENTRY = 128;

/**
 * A combined `tracestate` within 512 characters: as received when it fits; else whole entries
 * are dropped, those over 128 characters first, then from the end (the spec's truncation).
 */
export function boundTraceState(value: string): string {
  if (value.length <= MAX_TRACESTATE_LENGTH) return value;
  let entries = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "" && e.length <= LONG_ENTRY);
  let length = entries.reduce((n, e) => n + e.length, 0) + Math.max(0, entries.length - 1);
  while (length > MAX_TRACESTATE_LENGTH) {
    const dropped = entries.pop()!;
    length -= dropped.length + (entries.length > 0 ? 1 : 0);
  }
  entries = entries.slice(0, 32);
  return entries.join(",");
}

/**
 * The trace a request belongs to, from its `traceparent` (undefined: none; `REPEATED`: sent more
 * than once) and its combined `tracestate`, under `policy`. Null: the request carries no trace
 * context (forwarding only, and the client sent none or an invalid one).
 *
 * Forwarding only, the ids are the client's: `spanId` is its span (the parent the replica sees),
 * `parentSpanId` null and `sampled` false, since the gateway records no span of its own.
 */
export function traceFor(
  traceparent: string | undefined,
  tracestate: string | undefined,
  policy: TracePolicy,
): TraceIds | null {
  const parent = traceparent ? parseTraceparent(traceparent) : null;
  if (!policy.participate) {
    if (!parent) return null;
    return {
      traceId: parent.traceId,
      spanId: parent.parentId,
      parentSpanId: null,
      sampled: false,
      traceState: tracestate ?? "",
    };
  }
  if (parent) {
    return {
      traceId: parent.traceId,
      spanId: newSpanId(),
      parentSpanId: parent.parentId,
      sampled: parent.sampled,
      traceState: tracestate === undefined ? "" : boundTraceState(tracestate),
    };
  }
  const ratio = policy.sampleRatio;
  return {
    traceId: newTraceId(),
    spanId: newSpanId(),
    parentSpanId: null,
    sampled: ratio >= 1 || (ratio > 0 && Math.random() < ratio),
    traceState: "",
  };
}

/** The `traceparent` the replica gets when the gateway takes part: its span as the parent. */
export function formatTraceparent(trace: TraceIds): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.sampled ? "01" : "00"}`;
}
