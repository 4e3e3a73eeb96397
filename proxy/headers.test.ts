import { describe, expect, it } from "vitest";
import { keepIdentity, readRequestHead, readResponseHead, useTargetAuthority } from "./headers.ts";
import { FORWARD_ONLY, type TracePolicy } from "./observe/trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const TRACING: TracePolicy = { participate: true, sampleRatio: 1 };

/** The forwarded headers as name → values (lower-cased names). */
function forwarded(list: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!.toLowerCase();
    out[name] = [...(out[name] ?? []), list[i + 1]!];
  }
  return out;
}

describe("request id and trace context in the request head", () => {
  it("keeps a usable X-Request-Id (the first of several) and sends exactly one", () => {
    const head = readRequestHead(
      ["Host", "a.test", "X-Request-Id", "client-1", "x-request-id", "client-2", "Accept", "*/*"],
      "203.0.113.9",
      "http",
    );
    expect(head.requestId).toBe("client-1");
    expect(forwarded(head.forward)["x-request-id"]).toEqual(["client-1"]);
    expect(forwarded(head.forward).accept).toEqual(["*/*"]);
  });

  it("replaces an unusable one, and makes one when there is none", () => {
    const bad = readRequestHead(["Host", "a.test", "X-Request-Id", "two words"], "203.0.113.9", "http");
    expect(bad.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(forwarded(bad.forward)["x-request-id"]).toEqual([bad.requestId]);
    const none = readRequestHead(["Host", "a.test"], "203.0.113.9", "http");
    expect(none.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(none.requestId).not.toBe(bad.requestId);
  });

  it("with tracing, sends the gateway's span as the parent and the client's tracestate (combined)", () => {
    const head = readRequestHead(
      ["Host", "a.test", "traceparent", `00-${TRACE}-${PARENT}-01`, "tracestate", "rojo=1", "TraceState", "congo=2"],
      "203.0.113.9",
      "http",
      false,
      TRACING,
    );
    const sent = forwarded(head.forward);
    expect(head.trace).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, sampled: true });
    expect(sent.traceparent).toEqual([`00-${TRACE}-${head.trace!.spanId}-01`]);
    expect(sent.tracestate).toEqual(["rojo=1,congo=2"]);
  });

  it("with tracing, starts a trace when the traceparent is missing, invalid or repeated", () => {
    const repeated = readRequestHead(
      ["Host", "a.test", "traceparent", `00-${TRACE}-${PARENT}-01`, "traceparent", `00-${TRACE}-${PARENT}-01`],
      "203.0.113.9",
      "http",
      false,
      TRACING,
    );
    expect(repeated.trace!.traceId).not.toBe(TRACE);
    expect(repeated.trace!.parentSpanId).toBeNull();
    expect(forwarded(repeated.forward).traceparent).toEqual([
      `00-${repeated.trace!.traceId}-${repeated.trace!.spanId}-01`,
    ]);
    expect(forwarded(repeated.forward).tracestate).toBeUndefined();
  });

  it("without tracing, forwards the client's trace context unchanged and adds none", () => {
    const higher = `cc-${TRACE}-${PARENT}-01-more`;
    const head = readRequestHead(
      ["Host", "a.test", "traceparent", higher, "tracestate", "rojo=1"],
      "203.0.113.9",
      "http",
      false,
      FORWARD_ONLY,
    );
    expect(forwarded(head.forward).traceparent).toEqual([higher]);
    expect(forwarded(head.forward).tracestate).toEqual(["rojo=1"]);
    const none = readRequestHead(["Host", "a.test", "tracestate", "rojo=1"], "203.0.113.9", "http");
    expect(none.trace).toBeNull();
    expect(forwarded(none.forward).traceparent).toBeUndefined();
    expect(forwarded(none.forward).tracestate).toBeUndefined();
  });

  it("keeps the forwarding headers last, so an absolute-form authority still rewrites X-Forwarded-Host", () => {
    const head = readRequestHead(
      ["Host", "a.test", "traceparent", `00-${TRACE}-${PARENT}-01`],
      "203.0.113.9",
      "http",
      false,
      TRACING,
    );
    useTargetAuthority(head, "b.test");
    const sent = forwarded(head.forward);
    expect(sent.host).toEqual(["b.test"]);
    expect(sent["x-forwarded-host"]).toEqual(["b.test"]);
    expect(head.forward.slice(-8).filter((_, i) => i % 2 === 0)).toEqual([
      "x-forwarded-for",
      "x-forwarded-proto",
      "x-forwarded-host",
      "x-real-ip",
    ]);
  });

  it("a request read again keeps its first id and gateway span", () => {
    const raw = ["Host", "a.test", "traceparent", `00-${TRACE}-${PARENT}-01`];
    const first = readRequestHead(raw, "203.0.113.9", "http", false, TRACING);
    const again = readRequestHead(raw, "203.0.113.9", "http", false, TRACING);
    expect(again.requestId).not.toBe(first.requestId);
    keepIdentity(again, first, TRACING);
    expect(again.requestId).toBe(first.requestId);
    expect(again.trace).toBe(first.trace);
    expect(forwarded(again.forward)["x-request-id"]).toEqual([first.requestId]);
    expect(forwarded(again.forward).traceparent).toEqual([`00-${TRACE}-${first.trace!.spanId}-01`]);
  });
});

describe("request id in the response head", () => {
  it("replaces the replica's own X-Request-Id with the gateway's, even when Connection names it", () => {
    const { headers } = readResponseHead(
      ["Content-Type", "text/plain", "X-Request-Id", "replica-9", "Connection", "x-request-id"],
      "gw-1",
    );
    expect(headers).toEqual(["Content-Type", "text/plain", "x-request-id", "gw-1"]);
    expect(readResponseHead(["X-Request-Id", "replica-9"]).headers).toEqual([]);
  });
});
