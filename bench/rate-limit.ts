/**
 * @module
 * `npm run bench:ratelimit`: Gateplane's rate limiting next to nginx's `limit_req` (as dstack
 * configures it: `limit_req_zone … rate=…`, `limit_req … burst=N nodelay`, `limit_req_status 429`),
 * the same wrk traffic against both, on loopback, each proxy with its processes sharing one
 * set of buckets. Two loads, each saturating its keys so the expected count is exact:
 *
 * - hot: every request from one address (`ip_address` key / `$binary_remote_addr`);
 * - many: a random `X-Client` header out of `--keys` values per request (`header` key / `$http_x_client`).
 *
 * Prints admitted and refused requests, the expected admitted count (keys × (rps × seconds + burst)),
 * the error against it, throughput and p99 latency. Each run uses services of its own, so it starts
 * with empty buckets. Needs `nginx` and `wrk` on PATH; installs nothing.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../local-host/ports.ts";
import { startTunedProxy, type TunedProxyHandle } from "../proxy/index.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { DEFAULT_OBSERVABILITY } from "../schema/observability.ts";
import { service as serviceConfig } from "../test/support/config-builder.ts";
import { haveNginx, type ProxiedService, proxyConfig, startNginx, upstreamConfig } from "./nginx.ts";
import { renderTable } from "./report.ts";
import { haveWrk, runWrk, type WrkResult } from "./wrk.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    processes: { type: "string", default: String(availableParallelism()) },
    connections: { type: "string", default: "64" },
    "hot-rps": { type: "string", default: "1000" },
    "hot-burst": { type: "string", default: "100" },
    keys: { type: "string", default: "1000" },
    "many-rps": { type: "string", default: "2" },
    "many-burst": { type: "string", default: "5" },
    repeat: { type: "string", default: "1" },
  },
});

const num = (name: keyof typeof args) => {
  const n = Number(args[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number, got ${String(args[name])}`);
  return n;
};

interface Load {
  name: "hot" | "many";
  rps: number;
  burst: number;
  keys: number;
}

/** nginx's rate syntax: whole requests per second, else per minute (its only two units). */
function nginxRate(rps: number): string {
  return Number.isInteger(rps) ? `${rps}r/s` : `${Math.round(rps * 60)}r/m`;
}

const host = (load: Load, round: number) => `${load.name}-${round}.bench.test`;

// Admitted requests are counted from each proxy's own records, read right after each run.

function rateLimitOf(load: Load): ConfigService["rate_limits"][number] {
  return {
    prefix: "/",
    key: load.name === "hot" ? { type: "ip_address" } : { type: "header", header: "X-Client" },
    rps: load.rps,
    burst: load.burst,
  };
}

function benchDocument(upstreamPort: number, loads: readonly Load[], rounds: number): ConfigDocument {
  const services: ConfigService[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const load of loads) {
      services.push(
        serviceConfig({
          name: `${load.name}-${round}`,
          project: "bench",
          host: host(load, round),
          replicas: [`http://127.0.0.1:${upstreamPort}`],
          rate_limits: [rateLimitOf(load)],
        }),
      );
    }
  }
  return {
    version: 1,
    gateway: { id: "bench", name: "bench", project: "bench", domain: "bench.test", router: null },
    services,
    entrypoint: null,
    service_tokens: [],
    acme: null,
    observability: DEFAULT_OBSERVABILITY,
    generated_at: new Date().toISOString(),
  };
}

interface Row {
  load: Load;
  target: string;
  result: WrkResult;
  /** Requests the proxy passed to the upstream, by its own count (wrk misses those still in flight when it stops). */
  forwarded: number;
}

function table(rows: readonly Row[], seconds: number): string {
  const lines = [
    ["load", "target", "admitted", "wrk saw", "refused", "expected", "error %", "req/s", "p99 ms", "other errors"],
  ];
  for (const { load, target, result, forwarded } of rows) {
    const refused = result.non2xx;
    const admitted = forwarded;
    const expected = load.keys * (load.rps * seconds + load.burst);
    lines.push([
      load.name,
      target,
      String(admitted),
      String(result.requests - refused),
      String(refused),
      String(expected),
      (((admitted - expected) / expected) * 100).toFixed(1),
      result.rps.toFixed(0),
      result.p99Ms.toFixed(2),
      String(result.errors - result.non2xx),
    ]);
  }
  return renderTable(lines);
}

/** 200s for `host` in nginx's `dstack_stat` access log (`time host status request_time hit`). */
function nginxForwarded(log: string, host: string): number {
  let n = 0;
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const [, h, status] = line.split(" ");
    if (h === host && status === "200") n++;
  }
  return n;
}

async function main(): Promise<number> {
  const missing = [!haveNginx() && "nginx", !haveWrk() && "wrk"].filter(Boolean);
  if (missing.length > 0) {
    console.error(
      `bench:ratelimit needs ${missing.join(" and ")} on PATH. On Debian/Ubuntu:\n  apt-get update && apt-get install -y nginx-light wrk`,
    );
    return 1;
  }
  const seconds = num("seconds");
  const processes = num("processes");
  const connections = num("connections");
  const rounds = Math.max(1, num("repeat"));
  const loads: Load[] = [
    { name: "hot", rps: num("hot-rps"), burst: num("hot-burst"), keys: 1 },
    { name: "many", rps: num("many-rps"), burst: num("many-burst"), keys: num("keys") },
  ];
  const dir = mkdtempSync(path.join(tmpdir(), "gp-bench-rl-"));
  const stops: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));

  try {
    // A random key out of `keys` per request; the Host from -H is kept.
    const script = path.join(dir, "keys.lua");
    writeFileSync(
      script,
      `local keys = ${num("keys")}
request = function()
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["X-Client"] = "client-" .. math.random(1, keys)
  return wrk.format(nil, nil, h)
end
`,
    );
    const upstreamPort = await freePort();
    const upstream = await startNginx(
      path.join(dir, "upstream"),
      upstreamConfig(path.join(dir, "upstream"), upstreamPort),
      upstreamPort,
    );
    stops.push(() => upstream.stop());

    const nginxPort = await freePort();
    const nginxDir = path.join(dir, "proxy");
    const proxied: ProxiedService[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const load of loads) {
        proxied.push({
          host: host(load, round),
          upstream: `127.0.0.1:${upstreamPort}`,
          rateLimit: {
            key: load.name === "hot" ? "$binary_remote_addr" : "$http_x_client",
            rate: nginxRate(load.rps),
            burst: load.burst,
          },
        });
      }
    }
    const nginx = await startNginx(nginxDir, proxyConfig(nginxDir, nginxPort, proxied), nginxPort);
    stops.push(() => nginx.stop());

    const gateplane: TunedProxyHandle = await startTunedProxy(
      { httpPort: 0, processes, initialConfig: benchDocument(upstreamPort, loads, rounds) },
      {},
    );
    stops.push(() => gateplane.close());

    console.error(
      `Gateplane: ${processes} proxy process(es), buckets in the parent; nginx: worker_processes auto, 10m zones; wrk: 2 threads, ${connections} connections, ${seconds}s; ${availableParallelism()} cores`,
    );
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const load of loads) {
        for (const [target, port] of [
          ["nginx", nginxPort],
          ["gateplane", gateplane.port],
        ] as const) {
          const result = await runWrk({
            url: `http://127.0.0.1:${port}/`,
            host: host(load, round),
            connections,
            threads: 2,
            seconds,
            ...(load.name === "many" ? { script } : {}),
          });
          const forwarded =
            target === "nginx"
              ? nginxForwarded(path.join(nginxDir, "dstack.access.log"), host(load, round))
              : ((await gateplane.stats()).find((s) => s.service === `${load.name}-${round}`)?.windows["30"].requests ??
                0);
          process.stderr.write(
            `  ${load.name.padEnd(4)} ${target.padEnd(9)} ${result.requests} requests, ${result.non2xx} refused, ${forwarded} forwarded, ${result.rps.toFixed(0)} req/s\n`,
          );
          rows.push({ load, target, result, forwarded });
        }
      }
    }
    console.log("");
    console.log(table(rows, seconds));
    console.log(
      [
        "",
        `hot:  one client address, rps ${loads[0]!.rps}, burst ${loads[0]!.burst} (nginx rate=${nginxRate(loads[0]!.rps)}).`,
        `many: ${loads[1]!.keys} X-Client values at random, rps ${loads[1]!.rps}, burst ${loads[1]!.burst} each (nginx rate=${nginxRate(loads[1]!.rps)}).`,
        "admitted: requests the proxy passed upstream (nginx: 200s in its access log; Gateplane: its stats); wrk saw: the",
        "2xx answers wrk read before it stopped. expected: keys × (rps × seconds + burst); error % is admitted against it.",
        `Load average (1 min) when done: ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores; other work on the host skews throughput and latency.`,
      ].join("\n"),
    );
    return 0;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
