import { afterEach, describe, expect, it } from "vitest";
import { type OtlpReceiver, startOtlpReceiver } from "../../test/fakes/otlp-receiver.ts";
import { exchangeRecord } from "../../test/support/exchange-records.ts";
import { until } from "../../test/support/until.ts";
import { retryAfterMs, SpanExporter, type SpanExporterOptions } from "./otlp-exporter.ts";
import { str } from "./otlp-spans.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  cleanups.push(() => r.close());
  return r;
}

function exporter(endpoint: string, options: Partial<SpanExporterOptions> = {}, log: string[] = []): SpanExporter {
  const e = new SpanExporter({
    endpoint,
    resource: [str("service.name", "gateplane")],
    log: (l) => log.push(l),
    queue: 100,
    batch: 3,
    delayMs: 60_000,
    timeoutMs: 5_000,
    backoffMs: 5,
    ...options,
  });
  cleanups.push(() => e.close(200));
  return e;
}

/** `n` records with span ids 0…n-1 (as 16 hex digits), so arrivals can be told apart. */
const records = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) =>
    exchangeRecord({
      trace: {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: (from + i + 1).toString(16).padStart(16, "0"),
        parentSpanId: null,
        sampled: true,
        traceState: "",
      },
    }),
  );

describe("OTLP exporter", () => {
  it("posts full batches at once as JSON to the endpoint, and the rest on close", async () => {
    const r = await receiver();
    const e = exporter(r.url);
    for (const record of records(7)) e.add(record);
    await r.waitForSpans(6);
    expect(r.requests.map((q) => [q.method, q.path, q.contentType, q.spans])).toEqual([
      ["POST", "/v1/traces", "application/json", 3],
      ["POST", "/v1/traces", "application/json", 3],
    ]);
    await e.close();
    expect(r.spans.map((s) => Number.parseInt(s.spanId, 16))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(r.spans[0]!.resource).toEqual({ "service.name": "gateplane" });
    expect(r.spans[0]!.scope).toBe("gateplane");
    expect(e.counts).toEqual({ exported: 7, dropped: 0 });
  });

  it("sends a partial batch once its delay passes", async () => {
    const r = await receiver();
    const e = exporter(r.url, { delayMs: 20 });
    for (const record of records(2)) e.add(record);
    await r.waitForSpans(2);
    expect(r.requests).toHaveLength(1);
    await until("the batch to be counted", () => e.counts.exported === 2);
  });

  it("retries 429, 502, 503 and 504 (honouring Retry-After) and network timeouts, then delivers once", async () => {
    const r = await receiver();
    r.answerNext(
      { status: 503, headers: { "retry-after": "0" } },
      { status: 429 },
      { status: 502 },
      { status: 504, headers: { "retry-after": "0" } },
    );
    const e = exporter(r.url, { maxAttempts: 5 });
    for (const record of records(3)) e.add(record);
    await r.waitForSpans(3);
    expect(r.requests.map((q) => q.spans)).toEqual([0, 0, 0, 0, 3]);
    await until("the batch to be counted", () => e.counts.exported === 3);
    expect(e.counts.dropped).toBe(0);

    r.answerNext("hang");
    const slow = exporter(r.url, { timeoutMs: 100 });
    for (const record of records(3, 10)) slow.add(record);
    await r.waitForSpans(6);
    await until("the batch to be counted", () => slow.counts.exported === 3);
    expect(slow.counts.dropped).toBe(0);
  });

  it("drops a batch the collector refuses, or still fails after the last attempt, and says so", async () => {
    const r = await receiver();
    const log: string[] = [];
    r.answerNext({ status: 400 });
    const e = exporter(r.url, { maxAttempts: 2 }, log);
    for (const record of records(3)) e.add(record);
    await until("the refusal to be counted", () => e.counts.dropped === 3);
    r.answerNext({ status: 503, headers: { "retry-after": "0" } }, { status: 503, headers: { "retry-after": "0" } });
    for (const record of records(3, 3)) e.add(record);
    await until("the failed batch to be counted", () => e.counts.dropped === 6);
    expect(r.requests).toHaveLength(3);
    await e.close();
    expect(log).toEqual(["tracing: 6 spans dropped (export failed: HTTP 400; export failed: HTTP 503)"]);
  });

  it("drops and counts spans beyond its queue while the collector is slow, instead of growing", async () => {
    const r = await receiver();
    r.answerNext("hang");
    const e = exporter(r.url, { queue: 5, batch: 2, timeoutMs: 60_000 });
    for (const record of records(2)) e.add(record);
    await r.waitForRequests(1);
    // The first batch is in flight and hangs: five more wait, the rest is dropped.
    for (const record of records(8, 2)) e.add(record);
    expect(e.counts.dropped).toBe(3);
  });

  it("reads Retry-After as seconds or a date, within a minute", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMs("3", now)).toBe(3_000);
    expect(retryAfterMs(new Date(now + 7_000).toUTCString(), now)).toBe(7_000);
    expect(retryAfterMs("86400", now)).toBe(60_000);
    expect(retryAfterMs(new Date(now - 7_000).toUTCString(), now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(undefined, now)).toBeNull();
  });
});
