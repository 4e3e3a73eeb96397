/**
 * @module
 * `npm run bench:proxy`: Gateplane's proxy next to nginx configured as dstack configures it, on
 * loopback, driven by wrk. Loads: tiny responses at 64 connections; the same on one connection (the
 * latency of the hop); and SSE streams (200 events each, paced like token streaming) at 500
 * concurrent streams, through wrk too (it reads chunked responses to their end, so one "request" is
 * one whole stream). Prints req/s, p50/p99 latency, latency added over going to the upstream
 * directly, peak RSS and CPU of the proxy's processes, and Gateplane/nginx ratios. Gateplane runs
 * twice side by side: with its metrics (`gateplane`, the default) and without (`gateplane-off`:
 * `settings.metrics: false`, no request observed), and a second table gives what measuring costs
 * in req/s and CPU per request (the SSE load streams OpenAI chat chunks, so the meter does its real
 * work), and the `pair` loads drive both at once (half the connections or streams each), so that on
 * a busy host both see the same contention and their difference is what measuring costs. Needs `nginx` and
 * `wrk` on PATH; installs nothing. For experiments: `--only tiny|idle|sse|pair`,
 * `--repeat N` (rounds alternate the order of the two Gateplanes), `--targets nginx,gateplane,gateplane-off`,
 * `--processes N`, `--sharing handle|cluster`, pool and Node flags.
 * Observability's cost: `--access-log file|stdout` (file: `access.log` in a temporary state
 * directory of each Gateplane's own) and `--trace-ratio R` (spans of a share R of the requests, sent
 * to a local receiver that reads and discards them). Both Gateplanes get them, so `gateplane-off`
 * is then observed too (by those sinks, not by the metrics registry) and the difference is still
 * what metrics cost.
 */

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../local-host/ports.ts";
import { startTunedProxy, type TunedProxyHandle } from "../proxy/index.ts";
import { DEFAULT_POOL_SETTINGS } from "../proxy/upstream-pools.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY, type ObservabilityDocument } from "../schema/observability.ts";
import { service as serviceConfig } from "../test/support/config-builder.ts";
import { haveNginx, type Nginx, proxyConfig, startNginx, upstreamConfig } from "./nginx.ts";
import { cpuTimes, processTree, sampleRss } from "./procfs.ts";
import { formatMetricsCost, formatTable, type Row } from "./report.ts";
import { type SseUpstream, startSseUpstream } from "./sse-upstream.ts";
import { haveWrk, runWrk, type WrkResult } from "./wrk.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    "sse-seconds": { type: "string", default: "10" },
    "idle-seconds": { type: "string", default: "3" },
    warmup: { type: "string", default: "3" },
    processes: { type: "string", default: String(availableParallelism()) },
    sharing: { type: "string", default: "handle" },
    connections: { type: "string", default: "64" },
    "sse-streams": { type: "string", default: "500" },
    "sse-chunks": { type: "string", default: "200" },
    "sse-interval-ms": { type: "string", default: "10" },
    "pool-connections": { type: "string" },
    pipelining: { type: "string" },
    "node-flags": { type: "string", default: "" },
    repeat: { type: "string", default: "1" },
    targets: { type: "string", default: "direct,nginx,gateplane,gateplane-off" },
    only: { type: "string" },
    "access-log": { type: "string" },
    "trace-ratio": { type: "string" },
  },
});

const num = (name: keyof typeof args) => {
  const n = Number(args[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number, got ${String(args[name])}`);
  return n;
};

const TINY_HOST = "tiny.bench.test";
const SSE_HOST = "sse.bench.test";

function benchDocument(tinyPort: number, ssePort: number, observability = DEFAULT_OBSERVABILITY): ConfigDocument {
  const service = (name: string, host: string, port: number) =>
    serviceConfig({
      name,
      project: "bench",
      host,
      replicas: [`http://127.0.0.1:${port}`],
      model: name === "sse" ? { name: "bench-model", format: "openai", prefix: "/v1" } : null,
    });
  return {
    version: 1,
    gateway: { id: "bench", name: "bench", project: "bench", domain: "bench.test", router: null },
    services: [service("tiny", TINY_HOST, tinyPort), service("sse", SSE_HOST, ssePort)],
    entrypoint: { host: "gateway.bench.test" },
    service_tokens: [],
    acme: null,
    observability,
    generated_at: new Date().toISOString(),
  };
}

/** A local OTLP/HTTP endpoint that reads every request and answers 200; resolves with its URL and stop. */
async function startSpanSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Target {
  name: string;
  port: number;
  pids: () => number[];
}

async function measure(load: string, round: number, target: Target, run: () => Promise<WrkResult>): Promise<Row> {
  const pids = target.pids();
  const before = pids.map(cpuTimes);
  const rss = pids.length > 0 ? sampleRss(target.pids) : null;
  const result = await run();
  const peak = rss?.stop() ?? null;
  const perProcess = pids.map((p, i) => {
    const now = cpuTimes(p);
    return { user: now.user - before[i]!.user, system: now.system - before[i]!.system };
  });
  const user = perProcess.reduce((a, b) => a + b.user, 0);
  const system = perProcess.reduce((a, b) => a + b.system, 0);
  const cpu = pids.length > 0 ? user + system : null;
  process.stderr.write(
    `  ${load.padEnd(5)} ${target.name.padEnd(9)} ${result.rps.toFixed(0).padStart(7)} req/s  ` +
      `p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}` +
      (pids.length > 0
        ? `  CPU user ${user.toFixed(1)} s, system ${system.toFixed(1)} s; by process ${perProcess.map((c) => (c.user + c.system).toFixed(1)).join(" ")}`
        : "") +
      "\n",
  );
  return { load, round, target: target.name, result, rssBytes: peak, cpuSeconds: cpu };
}

async function main(): Promise<number> {
  const missing = [!haveNginx() && "nginx", !haveWrk() && "wrk"].filter(Boolean);
  if (missing.length > 0) {
    console.error(
      `bench:proxy needs ${missing.join(" and ")} on PATH. On Debian/Ubuntu:\n  apt-get update && apt-get install -y nginx-light wrk`,
    );
    return 1;
  }
  if (args.sharing !== "handle" && args.sharing !== "cluster") {
    console.error(`--sharing: expected handle or cluster, got ${args.sharing}`);
    return 2;
  }
  const seconds = num("seconds");
  const sseSeconds = num("sse-seconds");
  const warmup = num("warmup");
  const processes = num("processes");
  const only = args.only;
  const dir = mkdtempSync(path.join(tmpdir(), "gp-bench-"));
  const stops: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));

  try {
    const tinyPort = await freePort();
    const upstream: Nginx = await startNginx(
      path.join(dir, "upstream"),
      upstreamConfig(path.join(dir, "upstream"), tinyPort),
      tinyPort,
    );
    stops.push(() => upstream.stop());
    const sse: SseUpstream = await startSseUpstream(num("sse-chunks"), num("sse-interval-ms"));
    stops.push(() => sse.close());

    const nginxPort = await freePort();
    const nginxDir = path.join(dir, "proxy");
    const services = [
      { host: TINY_HOST, upstream: `127.0.0.1:${tinyPort}` },
      { host: SSE_HOST, upstream: `127.0.0.1:${sse.port}` },
    ];
    const nginx = await startNginx(nginxDir, proxyConfig(nginxDir, nginxPort, services), nginxPort);
    stops.push(() => nginx.stop());

    const pools = {
      ...(args["pool-connections"] ? { connections: Number(args["pool-connections"]) } : {}),
      ...(args.pipelining ? { pipelining: Number(args.pipelining) } : {}),
    };
    const accessLog = args["access-log"];
    if (accessLog !== undefined && accessLog !== "file" && accessLog !== "stdout") {
      console.error(`--access-log: expected file or stdout, got ${accessLog}`);
      return 2;
    }
    let tracing: ObservabilityDocument["tracing"] = null;
    if (args["trace-ratio"] !== undefined) {
      const sink = await startSpanSink();
      stops.push(sink.close);
      tracing = { endpoint: sink.url, sample_ratio: Math.min(1, num("trace-ratio")) };
    }
    const observability: ObservabilityDocument = {
      ...DEFAULT_OBSERVABILITY,
      access_log: accessLog ? { destination: accessLog, max_size: 100 * 1024 ** 2, max_files: 2 } : null,
      tracing,
    };
    const wanted = new Set((args.targets ?? "").split(","));
    const startGateplane = async (metrics: boolean): Promise<TunedProxyHandle | null> => {
      if (!wanted.has(metrics ? "gateplane" : "gateplane-off")) return null;
      // Each Gateplane its own state directory: one access log file per Gateplane, each rotating its own.
      const stateDir = path.join(dir, metrics ? "state-gateplane" : "state-gateplane-off");
      mkdirSync(stateDir);
      const proxy = await startTunedProxy(
        { httpPort: 0, processes, stateDir, initialConfig: benchDocument(tinyPort, sse.port, observability) },
        {
          sharing: args.sharing === "cluster" ? "cluster" : "handle",
          settings: { pools: { ...DEFAULT_POOL_SETTINGS, ...pools }, metrics },
          nodeFlags: args["node-flags"] ? args["node-flags"].split(" ") : [],
        },
      );
      stops.push(() => proxy.close());
      return proxy;
    };
    const gateplane = await startGateplane(true);
    const gateplaneOff = await startGateplane(false);
    const gateplaneTarget = (name: string, proxy: TunedProxyHandle | null): Target[] =>
      proxy ? [{ name, port: proxy.port, pids: () => (processes === 0 ? [process.pid] : proxy.pids()) }] : [];

    const fixed: Target[] = [
      { name: "direct", port: 0, pids: () => [] },
      { name: "nginx", port: nginxPort, pids: () => processTree(nginx.pid) },
    ].filter((t) => wanted.has(t.name));
    const pair = [...gateplaneTarget("gateplane", gateplane), ...gateplaneTarget("gateplane-off", gateplaneOff)];
    // Rounds alternate which Gateplane goes first, so drift in the host's load does not favour one.
    const targetsOf = (round: number): Target[] => [...fixed, ...(round % 2 === 1 ? pair : [...pair].reverse())];
    const targets = targetsOf(1);
    console.error(
      `Gateplane: ${processes} proxy process(es), sharing=${args.sharing}` +
        (accessLog ? `, access log to ${accessLog}` : "") +
        (tracing ? `, spans of ${tracing.sample_ratio * 100}% of requests` : "") +
        `; nginx: worker_processes auto; wrk: 2 threads; ${availableParallelism()} cores`,
    );
    const rows: Row[] = [];
    const repeat = Math.max(1, num("repeat"));
    if (only === undefined || only === "tiny") {
      const connections = num("connections");
      for (let round = 1; round <= repeat; round++) {
        for (const t of targetsOf(round)) {
          const port = t.name === "direct" ? tinyPort : t.port;
          const url = `http://127.0.0.1:${port}/`;
          if (round === 1 && warmup > 0 && t.name !== "direct") {
            await runWrk({ url, host: TINY_HOST, connections, threads: 2, seconds: warmup });
          }
          rows.push(
            await measure("tiny", round, t, () => runWrk({ url, host: TINY_HOST, connections, threads: 2, seconds })),
          );
        }
      }
    }
    if (pair.length === 2 && (only === undefined || only === "pair")) {
      // Both Gateplanes under tiny load at the same time: whatever else runs on the host hits both alike.
      const connections = Math.max(1, Math.floor(num("connections") / 2));
      for (let round = 1; round <= repeat; round++) {
        const measured = await Promise.all(
          pair.map((t) =>
            measure("pair", round, t, () =>
              runWrk({ url: `http://127.0.0.1:${t.port}/`, host: TINY_HOST, connections, threads: 1, seconds }),
            ),
          ),
        );
        rows.push(...measured);
      }
      // The same for streams: half the concurrent streams on each.
      const streams = Math.max(1, Math.floor(num("sse-streams") / 2));
      for (let round = 1; round <= repeat; round++) {
        const measured = await Promise.all(
          pair.map((t) =>
            measure("pair-sse", round, t, () =>
              runWrk({
                url: `http://127.0.0.1:${t.port}/v1/stream`,
                host: SSE_HOST,
                connections: streams,
                threads: 1,
                seconds: sseSeconds,
                timeoutSeconds: 60,
              }),
            ),
          ),
        );
        rows.push(...measured);
      }
    }
    if (only === undefined || only === "idle") {
      // One connection: the latency a single hop adds when the proxy is not busy.
      for (const t of targets) {
        const port = t.name === "direct" ? tinyPort : t.port;
        const url = `http://127.0.0.1:${port}/`;
        rows.push(
          await measure("idle", 1, t, () =>
            runWrk({ url, host: TINY_HOST, connections: 1, threads: 1, seconds: num("idle-seconds") }),
          ),
        );
      }
    }
    if (only === undefined || only === "sse") {
      const streams = num("sse-streams");
      for (let round = 1; round <= repeat; round++) {
        for (const t of targetsOf(round)) {
          const port = t.name === "direct" ? sse.port : t.port;
          const url = `http://127.0.0.1:${port}/v1/stream`;
          rows.push(
            await measure("sse", round, t, () =>
              runWrk({
                url,
                host: SSE_HOST,
                connections: streams,
                threads: 2,
                seconds: sseSeconds,
                timeoutSeconds: 60,
              }),
            ),
          );
        }
      }
    }
    console.log("");
    console.log(formatTable(rows));
    const cost = formatMetricsCost(rows);
    if (cost) {
      console.log("");
      console.log("What measuring costs (gateplane: metrics on; gateplane-off: settings.metrics false):");
      console.log("");
      console.log(cost);
    }
    console.log(
      [
        "",
        `tiny: GET of a 3-byte body from nginx, ${num("connections")} keep-alive connections, ${seconds}s per target after a ${warmup}s warm-up.`,
        `idle: the same request on one connection, one at a time (${num("idle-seconds")}s): the latency of the hop itself.`,
        `pair: tiny load on both Gateplanes at once, ${Math.max(1, Math.floor(num("connections") / 2))} connections each (one wrk thread each), ${seconds}s;`,
        `      pair-sse: the SSE load on both at once, ${Math.max(1, Math.floor(num("sse-streams") / 2))} streams each, ${sseSeconds}s.`,
        `sse:  ${num("sse-streams")} concurrent streams of ${num("sse-chunks")} OpenAI chat chunks ${num("sse-interval-ms")}ms apart from a Node upstream; one request = one whole stream`,
        "      (wrk reads each chunked response to its end, no Lua script), so latency is the stream's duration.",
        "+p50/+p99: added over the same load sent straight to the upstream. Peak RSS: all of a proxy's processes",
        "(nginx master + workers; Gateplane's proxy processes, not the parent). CPU: user + system of those processes.",
        `Load average (1 min) when done: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores; other work on the host skews every number.`,
      ].join("\n"),
    );
    return 0;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
