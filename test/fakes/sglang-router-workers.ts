/**
 * @module
 * The fake SGLang router's workers and its worker-management API (sglang-router.ts documents the
 * wire formats): the registry, the background jobs of the `workers` API, the legacy routes, injected
 * failures. One registry per fake process.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export const WORKER_TYPES = ["regular", "prefill", "decode"] as const;
export type WorkerType = (typeof WORKER_TYPES)[number];

export interface RegistryOptions {
  api: "workers" | "legacy";
  /** In PD mode the legacy API refuses adds (v0.1's `PDRouter::add_worker`). */
  pd: boolean;
  jobDelayMs: number;
  jobsHeld: boolean;
  workerStartupTimeoutMs: number;
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const validWorkerUrl = (url: unknown): url is string => {
  if (typeof url !== "string") return false;
  try {
    return ["http:", "https:", "grpc:"].includes(new URL(url).protocol);
  } catch {
    return false;
  }
};

export interface Worker {
  id: string;
  url: string;
  type: WorkerType;
  bootstrapPort: number | null;
}
export interface Job {
  id: string;
  url: string;
  type: WorkerType;
  bootstrapPort: number | null;
  kind: "add" | "remove";
  status: "pending" | "processing" | "succeeded" | "failed";
  error: string | null;
}

/** The registry and its API: `workers` and `jobs` are live; `management` serves a request if it is one. */
export function createRegistry(options: RegistryOptions) {
  const { api, pd, jobDelayMs, workerStartupTimeoutMs } = options;
  const workers: Worker[] = [];
  const jobs = new Map<string, Job>();
  let failures = { count: 0, status: 500 };
  const managementCalls: string[] = [];
  /** Jobs kept by `--fake-jobs held` until `POST /_fake/run-jobs` (null once released). */
  let heldJobs: Job[] | null = options.jobsHeld ? [] : null;

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

  const workerView = (w: Worker) => ({
    id: w.id,
    url: w.url,
    model_id: "unknown",
    priority: 50,
    cost: 1.0,
    worker_type: w.type,
    ...(w.type === "prefill" ? { bootstrap_port: w.bootstrapPort } : {}),
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
      workers.push({ id: job.id, url: job.url, type: job.type, bootstrapPort: job.bootstrapPort });
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
        const count = (type: WorkerType) => workers.filter((w) => w.type === type).length;
        send(res, 200, {
          workers: workers.map(workerView),
          total: workers.length,
          stats: { prefill_count: count("prefill"), decode_count: count("decode"), regular_count: count("regular") },
        });
      } else if (path === "/workers" && req.method === "POST") {
        let body: { url?: unknown; worker_type?: unknown; bootstrap_port?: unknown };
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
        const type = body.worker_type ?? "regular";
        if (!WORKER_TYPES.includes(type as WorkerType)) {
          send(res, 400, `Failed to deserialize the JSON body into the target type: worker_type: unknown variant`);
          return true;
        }
        const port = body.bootstrap_port ?? null;
        if (port !== null && (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535)) {
          send(res, 400, `Failed to deserialize the JSON body into the target type: bootstrap_port: invalid value`);
          return true;
        }
        const job: Job = {
          id: randomUUID(),
          url: body.url,
          type: type as WorkerType,
          bootstrapPort: type === "prefill" ? port : null,
          kind: "add",
          status: "pending",
          error: null,
        };
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
        const job: Job = { ...worker, kind: "remove", status: "pending", error: null };
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
      } else if (pd) {
        send(res, 400, "PD router requires specific add_prefill_server or add_decode_server methods");
      } else if (workers.some((w) => w.url === target)) {
        send(res, 400, `Worker ${target} already exists`);
      } else if (!(await workerHealthy(target))) {
        send(res, 400, `Timeout ${workerStartupTimeoutMs / 1000}s waiting for worker ${target} to become healthy`);
      } else {
        workers.push({ id: target, url: target, type: "regular", bootstrapPort: null });
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

  return {
    workers,
    jobs,
    managementCalls,
    management,
    fail(count: number, status: number) {
      failures = { count, status };
      return failures;
    },
    /** Runs the jobs `--fake-jobs held` kept, and every later one. */
    runHeld(): number {
      const released = heldJobs ?? [];
      heldJobs = null;
      for (const job of released) runJob(job);
      return released.length;
    },
  };
}
