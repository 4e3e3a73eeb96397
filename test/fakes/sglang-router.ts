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
 * Test-only controls (under `/_fake/`, which the real router answers 404): `POST /_fake/crash` (exit 1),
 * `POST /_fake/fail?count=N&status=S` (the next N worker-management calls answer S),
 * `POST /_fake/run-jobs` (runs the jobs `--fake-jobs held` kept, and every later one), `GET /_fake/state`.
 * Fake-only flags: `--fake-api`, `--fake-job-delay-ms` (how late accepted jobs run, default 50),
 * `--fake-version smg | 0.3.2` (which router's CLI: SMG's, the default, or the last PyPI one's),
 * `--fake-jobs held` (accepted jobs wait for `POST /_fake/run-jobs`), `--fake-hold-dir <dir>` (before
 * listening, writes `<dir>/<pid>.holding` and waits until `<dir>/<pid>.go` exists: a router that is
 * up but not serving for as long as the test wants), `--fake-worker-startup-timeout-ms` (default 3000).
 *
 * `sglang-router.mjs` runs it compiled (one plain module, no TypeScript loader per launch).
 */
import { randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseCli, usageError } from "./sglang-router-cli.ts";

const PROXIED = ["/generate", "/v1/", "/health", "/health_generate", "/get_model_info", "/get_server_info"];

const { values, workerUrls } = parseCli(process.argv.slice(2));
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

interface Worker {
  id: string;
  url: string;
}
interface Job {
  id: string;
  url: string;
  kind: "add" | "remove";
  status: "pending" | "processing" | "succeeded" | "failed";
  error: string | null;
}

const workers: Worker[] = [];
const jobs = new Map<string, Job>();
let nextWorker = 0;
let proxied = 0;
let failures = { count: 0, status: 500 };
const managementCalls: string[] = [];
/** Jobs kept by `--fake-jobs held` until `POST /_fake/run-jobs` (null once released). */
let heldJobs: Job[] | null = jobsMode === "held" ? [] : null;

const validWorkerUrl = (url: unknown): url is string => {
  if (typeof url !== "string") return false;
  try {
    return ["http:", "https:", "grpc:"].includes(new URL(url).protocol);
  } catch {
    return false;
  }
};

async function workerHealthy(url: string): Promise<boolean> {
  const deadline = Date.now() + workerStartupTimeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url.replace(/\/+$/, "")}/health`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  return false;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const workerView = (w: Worker) => ({
  id: w.id,
  url: w.url,
  model_id: "unknown",
  priority: 50,
  cost: 1.0,
  worker_type: "regular",
  is_healthy: true,
  load: 0,
  connection_mode: "Http",
});

function runJob(job: Job) {
  if (heldJobs) {
    heldJobs.push(job);
    return;
  }
  setTimeout(async () => {
    job.status = "processing";
    if (job.kind === "remove") {
      const at = workers.findIndex((w) => w.id === job.id);
      if (at !== -1) workers.splice(at, 1);
      job.status = "succeeded";
      return;
    }
    if (workers.some((w) => w.url === job.url)) {
      job.status = "failed";
      job.error = `Worker ${job.url} already exists`;
      return;
    }
    if (!(await workerHealthy(job.url))) {
      job.status = "failed";
      job.error = `Timeout ${workerStartupTimeoutMs / 1000}s waiting for worker ${job.url} to become healthy`;
      return;
    }
    workers.push({ id: job.id, url: job.url });
    job.status = "succeeded";
  }, jobDelayMs);
}

/** Worker-management routes of the selected generation; null when the path is not one. */
async function management(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  const path = url.pathname;
  const isModern = path === "/workers" || path.startsWith("/workers/");
  const isLegacy = path === "/add_worker" || path === "/remove_worker" || path === "/list_workers";
  if ((api === "workers" && !isModern) || (api === "legacy" && !isLegacy)) return false;
  managementCalls.push(`${req.method} ${path}`);
  if (failures.count > 0) {
    failures.count--;
    await readBody(req);
    send(res, failures.status, { error: "injected failure" });
    return true;
  }
  if (api === "workers") {
    if (path === "/workers" && req.method === "GET") {
      const regular = workers.length;
      send(res, 200, {
        workers: workers.map(workerView),
        total: regular,
        stats: { prefill_count: 0, decode_count: 0, regular_count: regular },
      });
    } else if (path === "/workers" && req.method === "POST") {
      let body: { url?: unknown };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch (error) {
        send(res, 400, `Failed to parse the request body as JSON: ${(error as Error).message}`);
        return true;
      }
      if (!validWorkerUrl(body?.url)) {
        send(res, 400, { error: "Invalid worker URL" });
        return true;
      }
      const job: Job = { id: randomUUID(), url: body.url, kind: "add", status: "pending", error: null };
      jobs.set(job.id, job);
      runJob(job);
      send(
        res,
        202,
        {
          status: "accepted",
          worker_id: job.id,
          location: `/workers/${job.id}`,
          message: "Worker addition queued for background processing",
        },
        { location: `/workers/${job.id}` },
      );
    } else if (path.startsWith("/workers/") && (req.method === "GET" || req.method === "DELETE")) {
      const key = decodeURIComponent(path.slice("/workers/".length));
      const worker = workers.find((w) => w.id === key || w.url === key);
      if (req.method === "GET") {
        const job = jobs.get(key);
        if (worker) send(res, 200, { ...workerView(worker), job_status: null });
        else if (job)
          send(res, 200, { id: job.id, url: job.url, job_status: { status: job.status, error: job.error } });
        else send(res, 404, { error: `Worker ${key} not found` });
        return true;
      }
      if (!worker) {
        send(res, 404, { error: `Worker ${key} not found` });
        return true;
      }
      const job: Job = { id: worker.id, url: worker.url, kind: "remove", status: "pending", error: null };
      runJob(job);
      send(res, 202, {
        status: "accepted",
        worker_id: worker.id,
        message: "Worker removal queued for background processing",
      });
    } else {
      send(res, 405, "Method Not Allowed");
    }
    return true;
  }
  if (path === "/list_workers" && req.method === "GET") {
    send(res, 200, { urls: workers.map((w) => w.url) });
  } else if (path === "/add_worker" && req.method === "POST") {
    const target = url.searchParams.get("url");
    if (!validWorkerUrl(target)) {
      send(res, 400, "Failed to deserialize query string: missing field `url`");
    } else if (workers.some((w) => w.url === target)) {
      send(res, 400, `Worker ${target} already exists`);
    } else if (!(await workerHealthy(target))) {
      send(res, 400, `Timeout ${workerStartupTimeoutMs / 1000}s waiting for worker ${target} to become healthy`);
    } else {
      workers.push({ id: target, url: target });
      send(res, 200, `Successfully added worker: ${target}`);
    }
  } else if (path === "/remove_worker" && req.method === "POST") {
    const target = url.searchParams.get("url") ?? "";
    const at = workers.findIndex((w) => w.url === target);
    if (at !== -1) workers.splice(at, 1);
    send(res, 200, `Successfully removed worker: ${target}`);
  } else {
    send(res, 405, "Method Not Allowed");
  }
  return true;
}

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

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://router");
  if (url.pathname.startsWith("/_fake/")) {
    await readBody(req);
    if (url.pathname === "/_fake/crash") {
      send(res, 200, "crashing");
      setImmediate(() => process.exit(1));
    } else if (url.pathname === "/_fake/fail") {
      failures = {
        count: Number(url.searchParams.get("count") ?? 1),
        status: Number(url.searchParams.get("status") ?? 500),
      };
      send(res, 200, failures);
    } else if (url.pathname === "/_fake/run-jobs") {
      const released = heldJobs ?? [];
      heldJobs = null;
      for (const job of released) runJob(job);
      send(res, 200, { released: released.length });
    } else if (url.pathname === "/_fake/state") {
      send(res, 200, {
        pid: process.pid,
        argv: process.argv.slice(2),
        policy,
        api,
        prometheus: { host: prometheusHost, port: prometheusPort },
        workers: workers.map((w) => w.url),
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
  if (workers.length === 0) {
    await readBody(req);
    send(res, 503, "No available workers (all circuits open or unhealthy)");
    return;
  }
  // Legacy /health goes to the first worker, like v0.1's route_to_first.
  const worker = url.pathname === "/health" ? workers[0]! : workers[nextWorker++ % workers.length]!;
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
for (const url of workerUrls) {
  if (validWorkerUrl(url)) workers.push({ id: api === "workers" ? randomUUID() : url, url });
}
process.stdout.write(
  `INFO sglang_router: Starting router on ${host}:${port} | policy: ${policy} | workers: ${workers.length} | api: ${api}\n`,
);
