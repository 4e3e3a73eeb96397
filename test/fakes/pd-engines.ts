/**
 * A protocol-faithful fake of SGLang's prefill/decode disaggregation (docs/pd.md), for the proxy's
 * PD routing tests: prefill workers (`--disaggregation-mode prefill --disaggregation-bootstrap-port
 * N`) and decode workers (`--disaggregation-mode decode`) that meet over an in-process "KV transfer"
 * ({@link KvTransfer}) the way real ones meet over the prefill's bootstrap server:
 *
 * - Every generation request (`POST /generate`, `/v1/chat/completions`, `/v1/completions`) must carry
 *   `bootstrap_host`, `bootstrap_port` and `bootstrap_room`, one per item for a batch (SGLang's batch
 *   forms: `/generate` with a list `text` or nested `input_ids`, chat with `n > 1`, completions with
 *   a list `prompt`) — else 400, as SGLang refuses a disaggregated request without them.
 * - A prefill worker publishes each room under ITS OWN bootstrap address (its host and bootstrap
 *   port), whatever the request says, then holds its answer until a decode worker took the room's KV
 *   (at most `transferTimeoutMs`, then 500): a prefill sent alone, or before its decode, never
 *   completes in time.
 * - A decode worker waits (at most `transferTimeoutMs`, then 500) for the room to be published by a
 *   prefill whose bootstrap address is the `bootstrap_host`/`bootstrap_port` it was given. A router
 *   that forgets the fields, pairs a decode with another prefill than the one it named, or reuses a
 *   room fails here, as the real KV transfer would.
 * - Rooms are compared as the decimal digits sent (a 63-bit room does not fit a JS number).
 *
 * Answers: the decode worker's is the real one (every token, `system_fingerprint` naming the worker);
 * the prefill worker's is a one-token answer of the same shape (SGLang's prefill returns after the
 * first token), which a router must not relay. Both stream as SSE ending in `data: [DONE]` when asked;
 * a streamed chat or completion with `stream_options.include_usage` ends with SGLang's usage-only
 * chunk (`"choices":[]` and `usage`) before `[DONE]`. `hold()` makes a worker keep the answers of the
 * requests it is sent until the returned function is called (the KV transfer still happens).
 * `fail(n, status)` makes the next n generation requests answer `status` at once; `resetNext(n)`
 * destroys their sockets. `/health` answers 200.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const PD_TOKENS = ["Dis", "aggregated", " hello", "!"];

interface Published {
  host: string;
  port: number | null;
  /** Resolves when a decode worker took the KV. */
  taken: () => void;
}

/** The KV transfer between the fake workers: rooms published by prefill, taken by decode. */
export class KvTransfer {
  readonly #published = new Map<string, Published>();
  readonly #waiting = new Map<string, Array<() => void>>();
  /** Rooms whose KV reached a decode worker, in order. */
  readonly transferred: string[] = [];

  publish(room: string, host: string, port: number | null, taken: () => void): void {
    this.#published.set(room, { host, port, taken });
    for (const wake of this.#waiting.get(room) ?? []) wake();
    this.#waiting.delete(room);
  }

  /** Waits for `room` from the prefill at `host:port`; false when it did not come in time from there. */
  async take(room: string, host: unknown, port: unknown, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#published.get(room);
      if (found && found.host === host && found.port === port) {
        this.#published.delete(room);
        this.transferred.push(room);
        found.taken();
        return true;
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        const list = this.#waiting.get(room) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.#waiting.set(room, list);
      });
    }
  }
}

export interface PdSeen {
  path: string;
  body: string;
  /** The bootstrap fields as sent (rooms as decimal strings), one entry per item. */
  bootstrap: { host: unknown; port: unknown; room: string }[];
}

export interface PdEngine {
  readonly id: string;
  readonly role: "prefill" | "decode";
  readonly url: string;
  /** Prefill only: the bootstrap port it publishes rooms under. */
  readonly bootstrapPort: number | null;
  readonly requests: PdSeen[];
  /** Generation requests open now. */
  readonly open: number;
  fail(count: number, status?: number): void;
  resetNext(count: number): void;
  /** Keeps answers (after the KV transfer) until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

export interface PdEngineOptions {
  id: string;
  role: "prefill" | "decode";
  transfer: KvTransfer;
  /** Prefill: the `--disaggregation-bootstrap-port` (null: none, SMG's `--prefill URL none`). */
  bootstrapPort?: number | null;
  /** How long either side waits for its counterpart (ms). */
  transferTimeoutMs?: number;
  /** Delay between streamed tokens (ms). */
  itlMs?: number;
}

const GENERATION = new Set(["/generate", "/v1/chat/completions", "/v1/completions"]);

/** Items in a request, as SGLang counts them for PD (null: a single request). */
export function pdBatchSize(path: string, body: Record<string, unknown>): number | null {
  if (path === "/generate") {
    if (Array.isArray(body.text)) return body.text.length;
    const ids = body.input_ids;
    if (Array.isArray(ids) && ids.length > 0 && Array.isArray(ids[0])) return ids.length;
    return null;
  }
  if (path === "/v1/chat/completions") return typeof body.n === "number" && body.n > 1 ? body.n : null;
  if (path === "/v1/completions") {
    const p = body.prompt;
    return Array.isArray(p) && p.length > 0 && typeof p[0] === "string" ? p.length : null;
  }
  return null;
}

/** `bootstrap_room` as the decimal digits sent (scalar or list). */
function roomsOf(raw: string): string[] | string | null {
  const m = /"bootstrap_room"\s*:\s*(\[[\d\s,]*\]|\d+)/.exec(raw);
  if (!m) return null;
  const text = m[1]!;
  return text.startsWith("[") ? (text.match(/\d+/g) ?? []) : text;
}

function bootstrapOf(path: string, raw: string, body: Record<string, unknown>): PdSeen["bootstrap"] | string {
  const n = pdBatchSize(path, body);
  const rooms = roomsOf(raw);
  const { bootstrap_host: host, bootstrap_port: port } = body;
  if (rooms === null || host === undefined || port === undefined) {
    return "disaggregated request without bootstrap_host, bootstrap_port and bootstrap_room";
  }
  if (n === null) {
    if (typeof rooms !== "string" || Array.isArray(host) || Array.isArray(port)) {
      return "bootstrap fields must be scalars for a single request";
    }
    return [{ host, port, room: rooms }];
  }
  if (!Array.isArray(rooms) || !Array.isArray(host) || !Array.isArray(port)) {
    return "bootstrap fields must be lists for a batch request";
  }
  if (rooms.length !== n || host.length !== n || port.length !== n) {
    return `bootstrap fields must have one entry per item (${n})`;
  }
  return rooms.map((room, i) => ({ host: host[i], port: port[i], room }));
}

function answer(
  res: ServerResponse,
  path: string,
  body: Record<string, unknown>,
  tokens: readonly string[],
  fingerprint: string,
  itlMs: number,
): void {
  const stream = body.stream === true;
  const model = typeof body.model === "string" ? body.model : "fake-model";
  const text = tokens.join("");
  if (!stream) {
    const json =
      path === "/generate"
        ? { text, meta_info: { id: fingerprint, completion_tokens: tokens.length, finish_reason: { type: "stop" } } }
        : path === "/v1/chat/completions"
          ? {
              id: "chatcmpl-pd",
              object: "chat.completion",
              created: 0,
              model,
              system_fingerprint: fingerprint,
              choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
              usage: { prompt_tokens: 3, completion_tokens: tokens.length, total_tokens: 3 + tokens.length },
            }
          : {
              id: "cmpl-pd",
              object: "text_completion",
              created: 0,
              model,
              system_fingerprint: fingerprint,
              choices: [{ index: 0, text, finish_reason: "stop" }],
              usage: { prompt_tokens: 3, completion_tokens: tokens.length, total_tokens: 3 + tokens.length },
            };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(json));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const options = body.stream_options as { include_usage?: unknown } | undefined;
  const usage =
    path !== "/generate" && options?.include_usage === true
      ? `data: ${JSON.stringify({
          id: path === "/v1/chat/completions" ? "chatcmpl-pd" : "cmpl-pd",
          object: path === "/v1/chat/completions" ? "chat.completion.chunk" : "text_completion",
          created: 0,
          model,
          choices: [],
          usage: { prompt_tokens: 3, completion_tokens: tokens.length, total_tokens: 3 + tokens.length },
        })}\n\n`
      : "";
  let i = 0;
  let sofar = "";
  const next = () => {
    if (res.destroyed) return;
    if (i === tokens.length) {
      res.end(`${usage}data: [DONE]\n\n`);
      return;
    }
    const token = tokens[i++]!;
    sofar += token;
    const last = i === tokens.length;
    const chunk =
      path === "/generate"
        ? { text: sofar, meta_info: { id: fingerprint, completion_tokens: i } }
        : path === "/v1/chat/completions"
          ? {
              id: "chatcmpl-pd",
              object: "chat.completion.chunk",
              created: 0,
              model,
              system_fingerprint: fingerprint,
              choices: [{ index: 0, delta: { content: token }, finish_reason: last ? "stop" : null }],
            }
          : {
              id: "cmpl-pd",
              object: "text_completion",
              created: 0,
              model,
              system_fingerprint: fingerprint,
              choices: [{ index: 0, text: token, finish_reason: last ? "stop" : null }],
            };
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    setTimeout(next, itlMs);
  };
  next();
}

export async function startPdEngine(o: PdEngineOptions): Promise<PdEngine> {
  const timeoutMs = o.transferTimeoutMs ?? 2_000;
  const itlMs = o.itlMs ?? 5;
  const requests: PdSeen[] = [];
  let failing = 0;
  let failStatus = 500;
  let resetting = 0;
  let open = 0;
  let held: Promise<void> | null = null;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method === "GET" && path === "/health") {
      res.writeHead(200).end();
      return;
    }
    if (req.method !== "POST" || !GENERATION.has(path)) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      if (resetting > 0) {
        resetting--;
        req.socket.destroy();
        return;
      }
      if (failing > 0) {
        failing--;
        res.writeHead(failStatus, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `${o.id} failed on purpose`, code: failStatus } }));
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid JSON"}');
        return;
      }
      const bootstrap = bootstrapOf(path, raw, body);
      requests.push({ path, body: raw, bootstrap: typeof bootstrap === "string" ? [] : bootstrap });
      if (typeof bootstrap === "string") {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: bootstrap, code: 400 } }));
        return;
      }
      open++;
      res.on("close", () => open--);
      void serve(path, body, bootstrap, res);
    });
  });

  const host = "127.0.0.1";
  const serve = async (
    path: string,
    body: Record<string, unknown>,
    items: PdSeen["bootstrap"],
    res: ServerResponse,
  ) => {
    const fingerprint = `${o.role}:${o.id}`;
    if (o.role === "prefill") {
      // Published under this worker's own bootstrap address, whatever the request named.
      const taken = items.map(
        (item) =>
          new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), timeoutMs);
            o.transfer.publish(item.room, host, o.bootstrapPort ?? null, () => {
              clearTimeout(timer);
              resolve(true);
            });
          }),
      );
      const all = await Promise.all(taken);
      if (res.destroyed) return;
      if (!all.every(Boolean)) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: "KV transfer timed out: no decode worker took the room", code: 500 } }),
        );
        return;
      }
      if (held) await held;
      answer(res, path, body, PD_TOKENS.slice(0, 1), fingerprint, itlMs);
      return;
    }
    const ok = await Promise.all(items.map((item) => o.transfer.take(item.room, item.host, item.port, timeoutMs)));
    if (res.destroyed) return;
    if (!ok.every(Boolean)) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { message: "KV transfer failed: the named prefill worker never sent this room", code: 500 },
        }),
      );
      return;
    }
    if (held) await held;
    answer(res, path, body, PD_TOKENS, fingerprint, itlMs);
  };

  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    id: o.id,
    role: o.role,
    url: `http://${host}:${port}`,
    bootstrapPort: o.role === "prefill" ? (o.bootstrapPort ?? null) : null,
    requests,
    get open() {
      return open;
    },
    fail(count, status = 500) {
      failing = count;
      failStatus = status;
    },
    resetNext(count) {
      resetting = count;
    },
    hold() {
      let release = () => {};
      const holding = new Promise<void>((resolve) => {
        release = resolve;
      });
      held = holding;
      return () => {
        if (held === holding) held = null;
        release();
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Prefill workers `p1…` (bootstrap ports 8998, 8999, …) and decode workers `d1…` sharing one transfer. */
export async function startPdEngines(
  counts: { prefill: number; decode: number },
  options: Pick<PdEngineOptions, "transferTimeoutMs" | "itlMs"> = {},
): Promise<{ transfer: KvTransfer; prefill: PdEngine[]; decode: PdEngine[]; close(): Promise<void> }> {
  const transfer = new KvTransfer();
  const prefill = await Promise.all(
    Array.from({ length: counts.prefill }, (_, i) =>
      startPdEngine({ ...options, id: `p${i + 1}`, role: "prefill", transfer, bootstrapPort: 8998 + i }),
    ),
  );
  const decode = await Promise.all(
    Array.from({ length: counts.decode }, (_, i) =>
      startPdEngine({ ...options, id: `d${i + 1}`, role: "decode", transfer }),
    ),
  );
  return {
    transfer,
    prefill,
    decode,
    close: async () => {
      await Promise.all([...prefill, ...decode].map((e) => e.close()));
    },
  };
}
