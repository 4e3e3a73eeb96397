import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY, type ObservabilityDocument } from "../../schema/observability.ts";
import { type OtlpReceiver, startOtlpReceiver } from "../../test/fakes/otlp-receiver.ts";
import { configDocument } from "../../test/support/config-builder.ts";
import { exchangeRecord } from "../../test/support/exchange-records.ts";
import { until } from "../../test/support/until.ts";
import type { ExchangeSink } from "./exchange-record.ts";
import { DEFAULT_OBSERVE_LIMITS, Observability } from "./sinks.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "gp-sinks-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function receiver(): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  cleanups.push(() => r.close());
  return r;
}

function doc(observability: Partial<ObservabilityDocument> | null): ConfigDocument {
  const base = configDocument(1, [{ name: "alpha", replicas: [] }]);
  if (observability === null) return base;
  return { ...base, observability: { ...DEFAULT_OBSERVABILITY, ...observability } };
}

const FILE_LOG = { destination: "file", max_size: 1024 ** 2, max_files: 3 } as const;
const lines = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "");

function observability(dir: string | null, log: string[] = [], sinks: ExchangeSink[] = []) {
  const o = new Observability({
    sinks,
    stateDir: dir,
    limits: { ...DEFAULT_OBSERVE_LIMITS, accessLogFlushMs: 0, spanDelayMs: 10 },
    log: (l) => log.push(l),
  });
  cleanups.push(() => o.close());
  return { o, sinks };
}

describe("observability sinks", () => {
  it("are none, and trace context is only forwarded, with the default observability", () => {
    const { o, sinks } = observability(stateDir());
    o.apply(doc(null));
    expect(sinks).toEqual([]);
    expect(o.tracing).toEqual({ participate: false, sampleRatio: 0 });
    o.apply(doc({}));
    expect(sinks).toEqual([]);
  });

  it("keep their own entries in the shared list, beside other readers, as documents change", async () => {
    const r = await receiver();
    const metrics: ExchangeSink = () => {};
    const { o, sinks } = observability(stateDir(), [], [metrics]);
    o.apply(doc({ access_log: FILE_LOG, tracing: { endpoint: r.url, sample_ratio: 0.25 } }));
    expect(sinks).toHaveLength(3);
    expect(sinks[0]).toBe(metrics);
    expect(o.tracing).toEqual({ participate: true, sampleRatio: 0.25 });
    const [, log, spans] = sinks;
    // The same settings keep the same writer and exporter; a new ratio only changes the policy.
    o.apply(doc({ access_log: FILE_LOG, tracing: { endpoint: r.url, sample_ratio: 1 } }));
    expect(sinks).toEqual([metrics, log, spans]);
    expect(o.tracing.sampleRatio).toBe(1);
    o.apply(doc({ access_log: { ...FILE_LOG, max_files: 4 }, tracing: { endpoint: r.url, sample_ratio: 1 } }));
    expect(sinks).toHaveLength(3);
    expect(sinks).not.toContain(log);
    o.apply(doc({ access_log: null, tracing: null }));
    expect(sinks).toEqual([metrics]);
    expect(o.tracing.participate).toBe(false);
  });

  it("write each record as a line of <state dir>/access.log, and rotate it here when this is the only process", async () => {
    const dir = stateDir();
    const { o, sinks } = observability(dir);
    o.apply(doc({ access_log: { destination: "file", max_size: 4_000, max_files: 2 } }));
    const file = path.join(dir, "access.log");
    let sent = 0;
    while (!existsSync(`${file}.1`)) {
      for (const sink of sinks) sink(exchangeRecord({ requestId: `r${sent}` }));
      sent++;
      await new Promise((r) => setTimeout(r, 2));
    }
    await o.close();
    const all = [...lines(`${file}.1`), ...(existsSync(file) ? lines(file) : [])].map((l) => JSON.parse(l).request_id);
    expect(all).toEqual(Array.from({ length: sent }, (_, i) => `r${i}`));
    expect(sinks).toEqual([]);
  });

  it("cannot write a file without the agent's state directory, and say so", () => {
    const log: string[] = [];
    const { o, sinks } = observability(null, log);
    o.apply(doc({ access_log: FILE_LOG }));
    expect(sinks).toEqual([]);
    expect(log).toEqual(["access log: destination file needs the agent's state directory; not writing one"]);
  });

  it("export the spans of sampled requests only, under the gateway's resource", async () => {
    const r = await receiver();
    const { o, sinks } = observability(null);
    o.apply(doc({ tracing: { endpoint: r.url, sample_ratio: 1 } }));
    const sampled = exchangeRecord();
    for (const sink of sinks) {
      sink(exchangeRecord({ trace: { ...sampled.trace!, sampled: false, spanId: "1".repeat(16) } }));
      sink(exchangeRecord({ trace: null }));
      sink(sampled);
    }
    const [span] = await r.waitForSpans(1);
    await until("the exporter to be idle", () => r.requests.length === 1);
    expect(span!.spanId).toBe(sampled.trace!.spanId);
    expect(span!.resource).toMatchObject({
      "service.name": "gateplane",
      "gateplane.gateway": "main/edge",
      "gateplane.gateway.id": "gw-1",
      "process.pid": process.pid,
    });
  });
});
