/**
 * @module
 * The SGLang Model Gateway's worker-management API, both generations
 * (`/work/shared/reference/sglang-router.md` §2.3):
 * - `workers` (sgl-router v0.2+, sgl-model-gateway, SMG): `GET /workers` → `{workers: [{id, url, …}]}`,
 *   `POST /workers {url}` → 202 `{status: "accepted", worker_id}` (the worker appears later, once the
 *   router's job checked it; older single-router builds answer 200 synchronously), `DELETE /workers/{id}`
 *   (id or percent-encoded URL) → 202/200.
 * - `legacy` (v0.1 – v0.2.x): `GET /list_workers` → `{urls: [...]}`, `POST /add_worker?url=` (waits for
 *   the worker's `/health`, then 200; 400 with the reason), `POST /remove_worker?url=` → 200.
 * Which one a router speaks is found by asking: `GET /workers` answered 404 means legacy.
 * Workers carry their type (`worker_type`, and a prefill worker's `bootstrap_port`) on the `workers`
 * API only; the legacy one has none (its PD router takes workers at launch: worker-set.ts).
 */
import { normalizeWorkerUrl, type WorkerSpec, type WorkerType } from "./worker-set.ts";

export { normalizeWorkerUrl };

export type ApiGeneration = "workers" | "legacy";

/** A registration as listed: a legacy listing (URLs only) shows every worker as `regular`. */
export interface RouterWorker extends WorkerSpec {
  /** What `DELETE /workers/{id}` takes (new generation); the URL itself on legacy routers. */
  id: string;
  /** A prefill worker listed without a `bootstrap_port` field at all: its port is not known. */
  portUnknown?: boolean;
}

const WORKER_TYPES: readonly string[] = ["regular", "prefill", "decode"] satisfies WorkerType[];

/** The router answered something other than what the API promises. */
export class SglangRouterError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = "SglangRouterError";
  }
}

export interface SglangRouterClientOptions {
  /** Per request; adds on legacy routers block until the worker is healthy, so they get `addTimeoutMs`. */
  timeoutMs?: number;
  addTimeoutMs?: number;
}

export class SglangRouterClient {
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #addTimeoutMs: number;

  constructor(baseUrl: string, options: SglangRouterClientOptions = {}) {
    this.#base = normalizeWorkerUrl(baseUrl);
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#addTimeoutMs = options.addTimeoutMs ?? 30_000;
  }

  /** Which worker API the router serves; throws while it does not answer (not up yet, or wedged). */
  async generation(): Promise<ApiGeneration> {
    const modern = await this.#call("GET", "/workers");
    if (modern.status === 200) return "workers";
    if (modern.status !== 404 && modern.status !== 405) throw this.#unexpected("GET /workers", modern);
    const legacy = await this.#call("GET", "/list_workers");
    if (legacy.status === 200) return "legacy";
    throw this.#unexpected("GET /list_workers", legacy);
  }

  async list(generation: ApiGeneration): Promise<RouterWorker[]> {
    if (generation === "workers") {
      const answer = await this.#call("GET", "/workers");
      if (answer.status !== 200) throw this.#unexpected("GET /workers", answer);
      const workers = (answer.json as { workers?: unknown } | null)?.workers;
      if (!Array.isArray(workers)) throw new SglangRouterError("GET /workers: no workers list in the answer", 200);
      return workers.flatMap((w: { id?: unknown; url?: unknown; worker_type?: unknown; bootstrap_port?: unknown }) => {
        if (typeof w?.url !== "string") return [];
        const typed = typeof w.worker_type === "string" && WORKER_TYPES.includes(w.worker_type);
        return [
          {
            id: typeof w.id === "string" ? w.id : w.url,
            url: w.url,
            type: typed ? (w.worker_type as WorkerType) : "regular",
            bootstrapPort: typeof w.bootstrap_port === "number" ? w.bootstrap_port : null,
            ...(typed && w.worker_type === "prefill" && !("bootstrap_port" in w) ? { portUnknown: true } : {}),
          },
        ];
      });
    }
    const answer = await this.#call("GET", "/list_workers");
    if (answer.status !== 200) throw this.#unexpected("GET /list_workers", answer);
    const urls = (answer.json as { urls?: unknown } | null)?.urls;
    if (!Array.isArray(urls)) throw new SglangRouterError("GET /list_workers: no urls list in the answer", 200);
    return urls
      .filter((u): u is string => typeof u === "string")
      .map((url) => ({ id: url, url, type: "regular" as const, bootstrapPort: null }));
  }

  /** `accepted`: queued (202), the worker shows up later or never (a failed job); `added`: registered now. */
  async add(generation: ApiGeneration, worker: WorkerSpec): Promise<"accepted" | "added"> {
    const { url } = worker;
    if (generation === "workers") {
      // dstack's body: the type, and a prefill worker's bootstrap port when it has one.
      const body = {
        url,
        worker_type: worker.type,
        ...(worker.type === "prefill" && worker.bootstrapPort !== null ? { bootstrap_port: worker.bootstrapPort } : {}),
      };
      const answer = await this.#call("POST", "/workers", body, this.#addTimeoutMs);
      if (answer.status === 202) return "accepted";
      if (answer.status === 200 || answer.status === 201) return "added";
      throw this.#unexpected(`POST /workers ${url}`, answer);
    }
    const answer = await this.#call(
      "POST",
      `/add_worker?url=${encodeURIComponent(url)}`,
      undefined,
      this.#addTimeoutMs,
    );
    if (answer.status === 200) return "added";
    throw this.#unexpected(`POST /add_worker ${url}`, answer);
  }

  /** Removes a worker; one the router no longer knows (404) counts as removed. */
  async remove(generation: ApiGeneration, worker: RouterWorker): Promise<void> {
    const [what, answer] =
      generation === "workers"
        ? [`DELETE /workers/${worker.id}`, await this.#call("DELETE", `/workers/${encodeURIComponent(worker.id)}`)]
        : [
            `POST /remove_worker ${worker.url}`,
            await this.#call("POST", `/remove_worker?url=${encodeURIComponent(worker.url)}`),
          ];
    if (answer.status === 200 || answer.status === 202 || answer.status === 204 || answer.status === 404) return;
    throw this.#unexpected(what, answer);
  }

  #unexpected(what: string, answer: { status: number; text: string }): SglangRouterError {
    const text = answer.text.trim().slice(0, 200);
    return new SglangRouterError(`${what}: HTTP ${answer.status}${text ? ` ${text}` : ""}`, answer.status);
  }

  async #call(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.#timeoutMs,
  ): Promise<{ status: number; text: string; json: unknown }> {
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      const why =
        (error as Error).name === "TimeoutError"
          ? `no answer within ${timeoutMs} ms`
          : (cause ?? (error as Error).message);
      throw new SglangRouterError(`${method} ${path.split("?")[0]}: ${why}`, null);
    }
    const text = await response.text().catch(() => "");
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Text answers (legacy add/remove) are fine.
    }
    return { status: response.status, text, json };
  }
}
