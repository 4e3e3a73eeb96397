import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Agent, startAgent } from "../../agent/agent.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { histogramCount, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import { DEFAULT_OBSERVABILITY } from "../../schema/observability.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../fakes/model-server.ts";
import { bootstrapFor, FAST_SOCKET, GATEWAY_ID, memoryLog, SECRET } from "../support/agent-fixtures.ts";
import { type PrometheusServer, startPrometheus } from "../support/prometheus.ts";
import { until } from "../support/until.ts";

// A real Prometheus scrapes a real agent's admin listener (two proxy processes) while a fake model
// server streams with a known time to first token; Prometheus's own histogram_quantile must land
// between that time's bucket and the bucket of the slowest time a client saw. The agent's report to
// the control plane carries the same distributions.
const TTFT_MS = 600;
const MODEL = "llama-3";

let dir: string;
let cp: FakeControlPlane;
let model: FakeModelServer;
let agent: Agent;
let prometheus: PrometheusServer;

function document(replicaUrl: string): ConfigDocument {
  return {
    version: 1,
    gateway: { id: GATEWAY_ID, name: "edge", project: "main", domain: "localhost", router: null },
    services: [
      {
        name: "llama",
        project: "main",
        host: "llama.localhost",
        https: false,
        hsts: null,
        auth: false,
        client_max_body_size: 1_048_576,
        read_timeout_ms: 60_000,
        rate_limits: [],
        model: { name: MODEL, format: "openai", prefix: "/v1" },
        router: null,
        replicas: [{ id: "r1", url: replicaUrl }],
        hold: null,
        usage: "as_requested",
      },
    ],
    entrypoint: { host: "gateway.localhost" },
    service_tokens: [],
    acme: null,
    observability: DEFAULT_OBSERVABILITY,
    generated_at: new Date(0).toISOString(),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-prometheus-agent-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  model = await startFakeModelServer("vllm", { ttftMs: TTFT_MS, itlMs: 10 });
  cp.setConfig(document(model.url));
  agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 2,
    adminPort: 0,
    backoff: { initialMs: 20, maxMs: 100 },
    socket: FAST_SOCKET,
    log: memoryLog(),
    version: "9.9.9-test",
  });
  await until("the document applied", () => agent.configVersion === 1);
  prometheus = await startPrometheus([`127.0.0.1:${agent.adminPort}`]);
}, 60_000);

afterAll(async () => {
  await prometheus?.close();
  await agent?.stop();
  await model?.close();
  await cp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * A streamed chat completion asking for usage, on the service's host or through the entrypoint; the
 * time to its first byte of body as this client saw it, in seconds.
 */
function chat(viaEntrypoint: boolean): Promise<number> {
  const body = JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let first: number | null = null;
    const req = request(
      {
        host: "127.0.0.1",
        port: agent.httpPort,
        path: "/v1/chat/completions",
        method: "POST",
        agent: false,
        headers: { host: viaEntrypoint ? "gateway.localhost" : "llama.localhost", "content-type": "application/json" },
      },
      (res) => {
        res.on("data", () => {
          first ??= performance.now();
        });
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`chat: ${res.statusCode}`));
          else resolve(((first ?? performance.now()) - started) / 1000);
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The value of a query that sums to one number (0 while it has no result). */
async function scalar(expr: string): Promise<number> {
  const result = await prometheus.query(expr);
  return result.length === 0 ? 0 : result[0]!.value;
}

const TTFT_COUNT = 'sum(gen_ai_server_time_to_first_token_seconds_count{service="llama"})';

describe("Prometheus scraping the agent", () => {
  it("serves an exposition promtool accepts, with the agent's own series", async () => {
    const res = await fetch(`http://127.0.0.1:${agent.adminPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("gateplane_config_version 1\n");
    expect(text).toContain('gateplane_agent_info{version="9.9.9-test"} 1\n');
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(check.status).toBe(0);
  });

  it("answers histogram_quantile of the time to first token between the replica's bucket and the slowest client's", async () => {
    // One request first, seen by Prometheus, so that rate() has a sample before the measured ones.
    const firstSeen = await chat(false);
    await until("the first request in Prometheus", async () => (await scalar(TTFT_COUNT)) === 1, 30_000, 200);
    const seen = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(i % 2 === 1)));
    await until("11 requests in Prometheus", async () => (await scalar(TTFT_COUNT)) === 11, 30_000, 200);

    const p90 = await scalar(
      'histogram_quantile(0.9, sum by (le) (rate(gen_ai_server_time_to_first_token_seconds_bucket{service="llama"}[1m])))',
    );
    // Every request's TTFT at the gateway is at least the replica's (0.6 s) and at most what its
    // client saw (the proxy's own delay is in both on a loaded machine). histogram_quantile lands
    // in the bucket that holds the ranked observation, interpolating inside it, so its answer lies
    // between the lower edge of the replica's bucket and the upper edge of the bucket holding the
    // slowest client's time (under load that can be a wide bucket: 1–2.5 s).
    const slowest = Math.max(firstSeen, ...seen);
    console.log(
      `histogram_quantile(0.9) of TTFT: ${p90} s (replica: ${TTFT_MS / 1000} s, slowest client: ${slowest} s)`,
    );
    const floor = TTFT_BOUNDS[TTFT_BOUNDS.findIndex((b) => b >= TTFT_MS / 1000) - 1]!;
    const ceiling = TTFT_BOUNDS.find((b) => b >= slowest) ?? Number.POSITIVE_INFINITY;
    expect(p90, `p90 ${p90}, log: ${prometheus.log()}`).toBeGreaterThanOrEqual(floor);
    expect(p90, `p90 ${p90}, log: ${prometheus.log()}`).toBeLessThanOrEqual(ceiling);
    // Tokens are the replica's own usage, exactly, summed over both proxy processes.
    expect(await scalar('sum(gateplane_tokens_total{service="llama",gen_ai_token_type="output",source="usage"})')).toBe(
      11 * TOKENS.length,
    );
    expect(await scalar('sum(gateplane_requests_total{service="llama",code="2xx"})')).toBe(11);
    expect(await scalar(`count(gen_ai_server_request_duration_seconds_count{gen_ai_request_model="${MODEL}"})`)).toBe(
      1,
    );
  }, 90_000);

  it("reports the same distributions to the control plane, in the stats message", async () => {
    const window = await until("a report with the 11 requests", () => {
      const last = cp.received("stats").at(-1);
      const llm = last?.services.find((s) => s.service === "llama")?.windows["300"].llm;
      return llm && histogramCount(llm.ttft) === 11 && llm;
    });
    expect(window.tokens).toEqual({ input: 11, output: 11 * TOKENS.length, estimated_output: 0 });
    expect(histogramCount(window.itl)).toBe(11 * (TOKENS.length - 1));
    expect(cp.messages.filter((m) => !m.valid)).toEqual([]);
  });
});
