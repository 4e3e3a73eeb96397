/**
 * The access log and span export across two proxy processes: every request's id and trace context
 * reach the replica and come back; each process appends whole lines to the one access log, which
 * the parent rotates when a process finds it full; every span reaches the OTLP receiver with the
 * client's span as its parent and the process that served it in its resource. The records are the
 * metering half's (`observe/observation.ts`), so a model's streams carry TTFT and tokens in both.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startFakeModelServer, TOKENS } from "../test/fakes/model-server.ts";
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
      await until("the batch logged", () => logLines(stateDir).length >= from + 10);
      // Rotation is asynchronous (a writer past max_size asks the parent): let it catch up before
      // the next batch, so the file is rotated as it grows and not once at the end on a busy host.
      // A writer checks the size every max_size / 8 of its own bytes and asks at most once a second
      // until it reopens: a file that passed max_size with no size check since (a loaded host) is
      // rotated on the next batch's writes, so this wait may end without it.
      await until(
        "rotation caught up",
        () => {
          try {
            return statSync(path.join(stateDir, "access.log")).size <= 6_000;
          } catch {
            return true; // renamed, not yet reopened
          }
        },
        3_000,
      ).catch(() => {});
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

  it("logs and exports a model's streams with their TTFT and tokens, the same record the metrics read", async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), "gp-observe-"));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const model = await startFakeModelServer("m", { ttftMs: 60, itlMs: 5, promptTokens: 7 });
    cleanups.push(() => model.close());
    const otlp: OtlpReceiver = await startOtlpReceiver();
    cleanups.push(() => otlp.close());
    const llama = {
      name: "llama",
      replicas: [model.url],
      model: { name: "llama-3", format: "openai" as const, prefix: "/v1" },
    };
    const proxy = await startTunedProxy(
      {
        httpPort: 0,
        processes: 2,
        stateDir,
        validatedDocuments: true,
        initialConfig: {
          ...configDocument(1, [llama]),
          observability: {
            metrics: { public: false },
            access_log: { destination: "file", max_size: 1024 ** 2, max_files: 2 },
            tracing: { endpoint: otlp.url, sample_ratio: 1 },
          },
        },
      },
      { settings: { observe: { ...DEFAULT_OBSERVE_LIMITS, accessLogFlushMs: 0, spanDelayMs: 20 } } },
    );
    cleanups.push(() => proxy.close());

    const STREAMS = 12;
    await Promise.all(
      Array.from({ length: STREAMS }, async (_, i) => {
        const res = await send(proxy.port, {
          host: `llama.${DOMAIN}`,
          method: "POST",
          path: "/v1/chat/completions",
          headers: { "content-type": "application/json", "x-request-id": `s-${i}` },
          body: JSON.stringify({
            model: "llama-3",
            messages: [{ role: "user", content: "hi" }],
            stream: true,
            stream_options: { include_usage: true },
          }),
        });
        expect(res.status).toBe(200);
        expect(res.headers["x-request-id"]).toBe(`s-${i}`);
        expect(res.body).toContain("[DONE]");
      }),
    );

    await until("a line for every stream", () => logLines(stateDir).length >= STREAMS);
    const records = logLines(stateDir).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.request_id).sort()).toEqual(Array.from({ length: STREAMS }, (_, i) => `s-${i}`).sort());
    for (const r of records) {
      expect(r).toMatchObject({
        method: "POST",
        status: 200,
        service: "llama",
        model: "llama-3",
        replica: expect.any(String),
        input_tokens: 7,
        output_tokens: TOKENS.length,
        tokens_estimated: false,
        incomplete: false,
        trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      });
      expect(r.ttft as number).toBeGreaterThanOrEqual(0.05);
      expect(r.tpot as number).toBeGreaterThan(0);
      expect(r.bytes_in as number).toBeGreaterThan(0);
      expect(r.bytes_out as number).toBeGreaterThan(0);
    }

    const spans = await otlp.waitForSpans(STREAMS);
    expect(spans).toHaveLength(STREAMS);
    for (const span of spans) {
      const a = attributes(span.attributes);
      expect(a).toMatchObject({
        "gen_ai.request.model": "llama-3",
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": TOKENS.length,
      });
      expect(a["gen_ai.server.time_to_first_token"] as number).toBeGreaterThanOrEqual(0.05);
      expect(span.events?.map((e) => e.name)).toEqual(["gen_ai.first_token"]);
      const line = records.find((r) => r.request_id === a["gateplane.request_id"]);
      expect(line?.trace_id).toBe(span.traceId);
    }

    // The metrics registry read the same records: one stream counted per request, across both processes.
    const families = await proxy.metrics();
    const requests = families.find((f) => f.name === "gateplane_requests_total");
    const counted = requests?.type === "histogram" ? -1 : requests?.samples.reduce((n, s) => n + s.value, 0);
    expect(counted).toBe(STREAMS);
  });
});
