/**
 * @module
 * A stand-in for the SGLang Model Gateway (`python -m sglang_router.launch_router`) for the agent's
 * tests: the real one cannot be installed here (no PyPI). Run as a child process with the real CLI
 * (`--host --port --policy --prometheus-host --prometheus-port --log-level --log-dir --worker-urls …`,
 * SMG's `--least-load-*`; anything else exits 2 like argparse, and `--help` prints argparse's help:
 * sglang-router-cli.ts), it serves the wire formats of
 * `/work/shared/reference/sglang-router.md` §2:
 * - `--fake-api workers` (default, v0.3/SMG): `GET /workers` → `{workers, total, stats}`;
 *   `POST /workers {url}` → 202 `{status: "accepted", worker_id: <uuid>, location, message}` and a
 *   `Location` header, the worker appearing only once a background job found its `/health` 2xx (a
 *   duplicate or unhealthy worker is a failed job, visible at `GET /workers/{id}`);
 *   `DELETE /workers/{id|percent-encoded url}` → 202, removed asynchronously; 404 for unknown ones.
 *   `/health` is liveness (200). No legacy routes.
 * - `--fake-api legacy` (v0.1): `POST /add_worker?url=` waits for the worker's `/health` then 200
 *   `Successfully added worker: <url>` (400 `Worker <url> already exists`, or on timeout);
 *   `POST /remove_worker?url=` → 200; `GET /list_workers` → `{urls}`; `/health` is proxied to the first
 *   worker (503 without one). No `/workers`.
 * Inference and info routes (`/generate`, `/v1/…`, `/health_generate`, `/get_model_info`,
 * `/get_server_info`) are proxied (streaming both ways) to a worker in round robin, 503 without
 * workers; any other path is 404, as the real router's fixed route table answers.
 * A Prometheus listener answers `/metrics` on `--prometheus-host:--prometheus-port`.
 *
 * PD mode (`--pd-disaggregation`, workers from `--prefill URL [PORT|none]` / `--decode URL` or
 * `POST /workers {url, worker_type: prefill|decode, bootstrap_port}`), as SMG's HTTP PD router
 * (`llm-serving-protocols.md` §3.1): `POST /generate`, `/v1/chat/completions`, `/v1/completions` pick
 * a prefill and a decode worker (round robin each), get the bootstrap fields injected
 * (`bootstrap_host` = the prefill URL's host, its `bootstrap_port` or null, a fresh `bootstrap_room`;
 * lists for a batch: proxy/pd/bootstrap.ts, the one implementation of that rule), and go to both at
 * once; decode's status is checked first (non-2xx: its error, for a stream as one SSE `error` event),
 * then prefill's body is read to its end (non-2xx: its error), then decode's answer is relayed as it
 * streams. A transport failure of either side is a 502. 503 without a worker of each type; other
 * proxied routes go to the first prefill worker. The legacy API's PD router refuses `/add_worker`
 * (400, as v0.1's `PDRouter::add_worker`): its workers come from the command line only.
 *
 * Test-only controls (under `/_fake/`, which the real router answers 404): `POST /_fake/crash` (exit 1),
 * `POST /_fake/fail?count=N&status=S` (the next N worker-management calls answer S),
 * `POST /_fake/run-jobs` (runs the jobs `--fake-jobs held` kept, and every later one), `GET /_fake/state`.
 * Fake-only flags: `--fake-api`, `--fake-job-delay-ms` (how late accepted jobs run, default 50),
 * `--fake-version smg | 0.3.2 | no-pd` (which router's CLI: SMG's, the default, the last PyPI one's,
 * or an old one without PD flags),
 * `--fake-jobs held` (accepted jobs wait for `POST /_fake/run-jobs`), `--fake-hold-dir <dir>` (before
 * listening, writes `<dir>/<pid>.holding` and waits until `<dir>/<pid>.go` exists: a router that is
 * up but not serving for as long as the test wants), `--fake-worker-startup-timeout-ms` (default 3000).
 *
 * The worker registry and its API are in sglang-router-workers.ts, the PD exchange in
 * sglang-router-pd.ts, the command line in sglang-router-cli.ts. `sglang-router.mjs` runs it
 * compiled (one plain module, no TypeScript loader per launch).
 */
import { randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseCli, usageError } from "./sglang-router-cli.ts";
import { exchangePd } from "./sglang-router-pd.ts";
import { createRegistry, readBody, send, validWorkerUrl, type Worker } from "./sglang-router-workers.ts";

const PROXIED = ["/generate", "/v1/", "/health", "/health_generate", "/get_model_info", "/get_server_info"];

const { values, workerUrls, pd, prefill: prefillFlags, decode: decodeFlags } = parseCli(process.argv.slice(2));
const PD_PATHS = new Set(["/generate", "/v1/chat/completions", "/v1/completions"]);
const intFlag = (name: string, fallback: number) => {
  const raw = values.get(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) usageError(`argument --${name}: invalid int value: '${raw}'`);
  return Number(raw);
};
const host = values.get("host") ?? "127.0.0.1";
const port = intFlag("port", 30000);
const prometheusHost = values.get("prometheus-host") ?? "127.0.0.1";
const prometheusPort = intFlag("prometheus-port", 29000);
const policy = values.get("policy") ?? "cache_aware";
const api = values.get("fake-api") ?? "workers";
if (api !== "workers" && api !== "legacy") usageError(`argument --fake-api: invalid choice: '${api}'`);
const jobDelayMs = intFlag("fake-job-delay-ms", 50);
const jobsMode = values.get("fake-jobs") ?? "auto";
if (jobsMode !== "auto" && jobsMode !== "held") usageError(`argument --fake-jobs: invalid choice: '${jobsMode}'`);
const holdDir = values.get("fake-hold-dir") ?? null;
const workerStartupTimeoutMs = intFlag("fake-worker-startup-timeout-ms", 3000);

const registry = createRegistry({ api, pd, jobDelayMs, jobsHeld: jobsMode === "held", workerStartupTimeoutMs });
const { workers, jobs, managementCalls, management } = registry;
let nextWorker = 0;
let nextPrefill = 0;
let nextDecode = 0;
let proxied = 0;
let pdRequests = 0;

function proxyTo(worker: Worker, req: IncomingMessage, res: ServerResponse, path: string) {
  proxied++;
  const target = new URL(`${worker.url.replace(/\/+$/, "")}${path}`);
  const headers = { ...req.headers, host: target.host };
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      method: req.method,
      headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => {
    if (!res.headersSent) send(res, 502, { error: `worker ${worker.url} failed: ${error.message}` });
    else res.destroy();
  });
  req.pipe(upstream);
}

/** One PD request: a pair (round robin on each side), then the PD router's exchange. */
async function pdRoute(req: IncomingMessage, res: ServerResponse, path: string) {
  const raw = Buffer.from(await readBody(req), "utf8");
  const prefills = workers.filter((w) => w.type === "prefill");
  const decodes = workers.filter((w) => w.type === "decode");
  if (prefills.length === 0 || decodes.length === 0) {
    const which = prefills.length === 0 ? "No prefill workers available" : "No decode workers available";
    return send(res, 503, `No available servers: ${which}`);
  }
  const prefill = prefills[nextPrefill++ % prefills.length]!;
  const decode = decodes[nextDecode++ % decodes.length]!;
  pdRequests++;
  proxied++;
  await exchangePd({ raw, path, accept: String(req.headers.accept ?? "*/*"), prefill, decode }, res);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://router");
  if (url.pathname.startsWith("/_fake/")) {
    await readBody(req);
    if (url.pathname === "/_fake/crash") {
      send(res, 200, "crashing");
      setImmediate(() => process.exit(1));
    } else if (url.pathname === "/_fake/fail") {
      send(
        res,
        200,
        registry.fail(Number(url.searchParams.get("count") ?? 1), Number(url.searchParams.get("status") ?? 500)),
      );
    } else if (url.pathname === "/_fake/run-jobs") {
      send(res, 200, { released: registry.runHeld() });
    } else if (url.pathname === "/_fake/state") {
      send(res, 200, {
        pid: process.pid,
        argv: process.argv.slice(2),
        policy,
        api,
        prometheus: { host: prometheusHost, port: prometheusPort },
        workers: workers.map((w) => w.url),
        registrations: workers.map((w) => ({ url: w.url, worker_type: w.type, bootstrap_port: w.bootstrapPort })),
        pd,
        pd_requests: pdRequests,
        jobs: [...jobs.values()],
        proxied,
        management_calls: managementCalls,
      });
    } else {
      send(res, 404, "Not Found");
    }
    return;
  }
  if (await management(req, res, url)) return;
  if (url.pathname === "/health" && api === "workers") {
    send(res, 200, "OK");
    return;
  }
  if (
    !PROXIED.some(
      (route) => url.pathname === route || url.pathname.startsWith(route.endsWith("/") ? route : `${route}/`),
    )
  ) {
    await readBody(req);
    send(res, 404, "Not Found");
    return;
  }
  if (pd && req.method === "POST" && PD_PATHS.has(url.pathname)) {
    await pdRoute(req, res, url.pathname);
    return;
  }
  // A PD router's other routes (model info, models, health) ask the first prefill worker.
  const candidates = pd ? workers.filter((w) => w.type === "prefill") : workers;
  if (candidates.length === 0) {
    await readBody(req);
    send(res, 503, "No available workers (all circuits open or unhealthy)");
    return;
  }
  // Legacy /health goes to the first worker, like v0.1's route_to_first.
  const worker = url.pathname === "/health" || pd ? candidates[0]! : candidates[nextWorker++ % candidates.length]!;
  proxyTo(worker, req, res, `${url.pathname}${url.search}`);
});

const metrics = createServer((req, res) => {
  if (req.url !== "/metrics") return send(res, 404, "Not Found");
  send(
    res,
    200,
    `# TYPE sgl_router_active_workers gauge\nsgl_router_active_workers ${workers.length}\nsgl_router_requests_total ${proxied}\n`,
  );
});

function listen(target: ReturnType<typeof createServer>, listenHost: string, listenPort: number): Promise<void> {
  return new Promise((resolve) => {
    target.once("error", (error) => {
      process.stderr.write(`ERROR: failed to bind ${listenHost}:${listenPort}: ${error.message}\n`);
      process.exit(1);
    });
    target.listen({ host: listenHost, port: listenPort }, resolve);
  });
}

process.on("SIGTERM", () => process.exit(0));
if (holdDir) {
  writeFileSync(join(holdDir, `${process.pid}.holding`), "");
  const go = join(holdDir, `${process.pid}.go`);
  while (!existsSync(go)) await sleep(10);
}
await listen(metrics, prometheusHost, prometheusPort);
await listen(server, host, port);
const launched: Omit<Worker, "id">[] = pd
  ? [
      ...prefillFlags.map(([url, bootstrapPort]) => ({ url, type: "prefill" as const, bootstrapPort })),
      ...decodeFlags.map((url) => ({ url, type: "decode" as const, bootstrapPort: null })),
    ]
  : workerUrls.map((url) => ({ url, type: "regular" as const, bootstrapPort: null }));
for (const w of launched) {
  if (validWorkerUrl(w.url)) workers.push({ id: api === "workers" ? randomUUID() : w.url, ...w });
}
process.stdout.write(
  `INFO sglang_router: Starting router on ${host}:${port} | mode: ${pd ? "PrefillDecode" : "Regular"} | policy: ${policy} | workers: ${workers.length} | api: ${api}\n`,
);
