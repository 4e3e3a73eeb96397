import { describe, expect, it } from "vitest";
import {
  boundTraceState,
  FORWARD_ONLY,
  formatTraceparent,
  MAX_TRACESTATE_LENGTH,
  parseTraceparent,
  REPEATED,
  type TracePolicy,
  traceFor,
} from "./trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const VALID = `00-${TRACE}-${PARENT}-01`;
const TRACING: TracePolicy = { participate: true, sampleRatio: 1 };

describe("traceparent", () => {
  it("reads version 00 exactly, and a higher version by the spec's forward-compatible rule", () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE, parentId: PARENT, sampled: true });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)?.sampled).toBe(false);
    // Only the sampled bit counts among the flags.
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-03`)?.sampled).toBe(true);
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-fe`)?.sampled).toBe(false);
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01`)).toEqual({ traceId: TRACE, parentId: PARENT, sampled: true });
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-comes-next`)?.traceId).toBe(TRACE);
  });

  it("refuses what the spec calls invalid", () => {
    const invalid = [
      "",
      "00",
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 has exactly four fields
      `cc-${TRACE}-${PARENT}-01extra`, // a higher version's next field follows a dash
      `ff-${TRACE}-${PARENT}-01`, // version ff is forbidden
      `00-${"0".repeat(32)}-${PARENT}-01`, // all-zero trace id
      `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero parent id
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // lowercase hex only
      `00-${TRACE}-${PARENT}-0g`,
      `00_${TRACE}_${PARENT}_01`,
      `0-${TRACE}-${PARENT}-01`,
      ` ${VALID}`.slice(0, 55),
      `00-${TRACE.slice(1)}-${PARENT}-01`,
    ];
    for (const value of invalid) expect(parseTraceparent(value), value).toBeNull();
  });
});

describe("tracestate", () => {
  it("passes as received up to 512 characters", () => {
    const value = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE";
    expect(boundTraceState(value)).toBe(value);
    const full = `a=${"x".repeat(MAX_TRACESTATE_LENGTH - 2)}`;
    expect(boundTraceState(full)).toBe(full);
  });

  it("beyond, drops whole entries: those over 128 characters first, then from the end", () => {
    const long = `big=${"y".repeat(130)}`;
    const entries = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, "0")}=${"v".repeat(20)}`);
    const bounded = boundTraceState([entries[0], long, ...entries.slice(1)].join(","));
    expect(bounded.length).toBeLessThanOrEqual(MAX_TRACESTATE_LENGTH);
    expect(bounded).not.toContain("big=");
    const kept = bounded.split(",");
    // The first entries, in order, as many as fit.
    expect(kept).toEqual(entries.slice(0, kept.length));
    expect(kept.length).toBe(Math.floor((MAX_TRACESTATE_LENGTH + 1) / (entries[0]!.length + 1)));
  });
});

describe("the trace a request propagates", () => {
  it("with tracing, continues a valid client trace under a new gateway span, following its flag", () => {
    const trace = traceFor(VALID, "rojo=1", TRACING)!;
    expect(trace.traceId).toBe(TRACE);
    expect(trace.parentSpanId).toBe(PARENT);
    expect(trace.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(trace.spanId).not.toBe(PARENT);
    expect(trace.sampled).toBe(true);
    expect(trace.traceState).toBe("rojo=1");
    expect(formatTraceparent(trace)).toBe(`00-${TRACE}-${trace.spanId}-01`);
    // The client's "not sampled" wins over a sample ratio of 1.
    const unsampled = traceFor(`00-${TRACE}-${PARENT}-00`, undefined, TRACING)!;
    expect(unsampled.sampled).toBe(false);
    expect(formatTraceparent(unsampled)).toMatch(/-00$/);
    // A higher version is continued and sent on as version 00.
    expect(formatTraceparent(traceFor(`cc-${TRACE}-${PARENT}-01-x`, undefined, TRACING)!)).toMatch(/^00-/);
  });

  it("with tracing, starts a new trace without a valid traceparent, sampled by the ratio, dropping tracestate", () => {
    for (const traceparent of [undefined, "garbage", REPEATED, `00-${TRACE}-${"0".repeat(16)}-01`]) {
      const trace = traceFor(traceparent, "rojo=1", TRACING)!;
      expect(trace.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(trace.traceId).not.toBe(TRACE);
      expect(trace.parentSpanId).toBeNull();
      expect(trace.sampled).toBe(true);
      expect(trace.traceState).toBe("");
    }
    expect(traceFor(undefined, undefined, { participate: true, sampleRatio: 0 })!.sampled).toBe(false);
    const sampled = Array.from({ length: 2_000 }, () =>
      traceFor(undefined, undefined, { participate: true, sampleRatio: 0.5 }),
    );
    const share = sampled.filter((t) => t!.sampled).length / sampled.length;
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);
  });

  it("without tracing, forwards a valid one as the client's and makes none up", () => {
    const trace = traceFor(VALID, "rojo=1", FORWARD_ONLY)!;
    expect(trace).toEqual({ traceId: TRACE, spanId: PARENT, parentSpanId: null, sampled: false, traceState: "rojo=1" });
    expect(traceFor(undefined, "rojo=1", FORWARD_ONLY)).toBeNull();
    expect(traceFor("garbage", "rojo=1", FORWARD_ONLY)).toBeNull();
    expect(traceFor(REPEATED, undefined, FORWARD_ONLY)).toBeNull();
  });
});
