/**
 * The access log and span export across two proxy processes: every request's id and trace context
 * reach the replica and come back; each process appends whole lines to the one access log, which
 * the parent rotates when a process finds it full; every span reaches the OTLP receiver with the
 * client's span as its parent and the process that served it in its resource.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { attributes, type OtlpReceiver, startOtlpReceiver } from "../test/fakes/otlp-receiver.ts";
import { type Echo, startReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { until } from "../test/support/until.ts";
import { startTunedProxy } from "./index.ts";
import { DEFAULT_OBSERVE_LIMITS } from "./observe/sinks.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const clientSpan = (i: number) => (i + 1).toString(16).padStart(16, "0");
const REQUESTS = 160;

/** Every line of the access log and its rotated files, oldest first. */
function logLines(dir: string): string[] {
  const rotated = readdirSync(dir)
    .filter((f) => /^access\.log\.\d+$/.test(f))
    .sort((a, b) => Number(b.split(".").pop()) - Number(a.split(".").pop()));
  const files = [...rotated, ...(existsSync(path.join(dir, "access.log")) ? ["access.log"] : [])];
  return files.flatMap((f) =>
    readFileSync(path.join(dir, f), "utf8")
      .split("\n")
      .filter((l) => l !== ""),
  );
}

describe("observability across proxy processes", () => {
  it("logs one whole line per request from both processes, rotates the file, and exports every span", async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), "gp-observe-"));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const replica = await startReplica("a");
    cleanups.push(() => replica.close());
    const otlp: OtlpReceiver = await startOtlpReceiver();
    cleanups.push(() => otlp.close());
    const log: string[] = [];
    const proxy = await startTunedProxy(
      {
        httpPort: 0,
        processes: 2,
        stateDir,
        validatedDocuments: true,
        initialConfig: configDocument(1, [{ name: "alpha", replicas: [replica.url] }]),
        log: (l) => log.push(l),
      },
      { settings: { observe: { ...DEFAULT_OBSERVE_LIMITS, accessLogFlushMs: 0, spanDelayMs: 20 } } },
    );
    cleanups.push(() => proxy.close());
    // The schema's least max_size is 1 MB; the proxy takes what a validated document says.
    await proxy.apply({
      ...configDocument(2, [{ name: "alpha", replicas: [replica.url] }]),
      observability: {
        metrics: { public: false },
        access_log: { destination: "file", max_size: 6_000, max_files: 100 },
        tracing: { endpoint: otlp.url, sample_ratio: 0.5 },
      },
    });

    // Ten at a time, each on its own connection: the kernel hands them to either process.
    const seen = new Map<string, string>();
    for (let from = 0; from < REQUESTS; from += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          const i = from + k;
          const res = await send(proxy.port, {
            host: `alpha.${DOMAIN}`,
            path: `/item/${i}?api_key=secret`,
            headers: { "x-request-id": `r-${i}`, traceparent: `00-${TRACE}-${clientSpan(i)}-01` },
          });
          expect(res.status).toBe(200);
          expect(res.headers["x-request-id"]).toBe(`r-${i}`);
          const echo = JSON.parse(res.body) as Echo;
          expect(echo.headers["x-request-id"]).toBe(`r-${i}`);
          const [version, trace, span, flags] = String(echo.headers.traceparent).split("-");
          expect([version, trace, flags]).toEqual(["00", TRACE, "01"]);
          expect(span).not.toBe(clientSpan(i));
          seen.set(`r-${i}`, span!);
        }),
      );
    }

    // The client's sampled flag is followed (the ratio is for traces the gateway starts).
    const spans = await otlp.waitForSpans(REQUESTS);
    expect(spans).toHaveLength(REQUESTS);
    const pids = new Set<number>();
    for (const span of spans) {
      const id = String(attributes(span.attributes)["gateplane.request_id"]);
      const i = Number(id.slice(2));
      expect(span).toMatchObject({ traceId: TRACE, spanId: seen.get(id), parentSpanId: clientSpan(i), kind: 2 });
      expect(attributes(span.attributes)["url.path"]).toBe(`/item/${i}`);
      pids.add(Number(span.resource["process.pid"]));
    }
    // Both processes served (and so wrote lines): the spans say which.
    expect([...pids].sort()).toEqual([...proxy.pids()].sort());

    await until("a line for every request", () => logLines(stateDir).length >= REQUESTS);
    const lines = logLines(stateDir);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.request_id).sort()).toEqual([...seen.keys()].sort());
    for (const r of records) {
      expect(r).toMatchObject({
        method: "GET",
        host: `alpha.${DOMAIN}`,
        status: 200,
        service: "alpha",
        trace_id: TRACE,
      });
      expect(r.path).toBe(`/item/${String(r.request_id).slice(2)}`);
    }
    expect(lines.join("\n")).not.toContain("secret");
    // Rotated by the parent, more than once, whole lines only.
    expect(existsSync(path.join(stateDir, "access.log.2"))).toBe(true);
    expect(log.filter((l) => l.includes("rotation") || l.includes("dropped"))).toEqual([]);
  });
});
