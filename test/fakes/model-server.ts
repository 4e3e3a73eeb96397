/**
 * A replica that speaks enough of the OpenAI protocol for the entrypoint and metrics tests, as vLLM
 * does: `/v1/chat/completions` and `/v1/completions`, whole or streamed as SSE chunks ending in
 * `data: [DONE]`, and SGLang's native `/generate` (cumulative text, counts in `meta_info`). Every
 * answer names the server (`system_fingerprint`) so tests see which replica served a request.
 *
 * Timing: `ttftMs` before the first token (a stream's role chunk comes with it, as vLLM sends it) or
 * before a whole answer, `itlMs` between a stream's tokens; a streamed answer also waits for
 * `release()` between tokens while `gated` is set, so tests can prove chunks arrive one by one.
 *
 * Usage, as vLLM: whole answers carry `usage`; a stream sends the final usage chunk (`choices: []`)
 * when `stream_options` is given and its `include_usage` is not false (vLLM's default is true), and
 * `stream_options` on a request that does not stream is a 400. `usage: "never"` leaves usage out
 * everywhere (a server that counts nothing); `"always"` sends the usage chunk on every stream (vLLM's
 * `--enable-force-include-usage`).
 *
 * Engine metrics (`metrics`): `GET /metrics` answers Prometheus text as vLLM v1 or SGLang expose it
 * (their HELP/TYPE lines, labels and `_total`/`_created` counters), following the server's real
 * load: the generation requests open now, the first `maxRunning` of them running and the rest
 * waiting, KV-cache use = running / maxRunning, prompt tokens counted per request. Scrapes are not
 * recorded in `requests`; `scrapes` counts them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  path: string;
  host: string | undefined;
  body: string;
}

export interface ModelServerOptions {
  /** Path prefix of the OpenAI API (default `/v1`). */
  prefix?: string;
  /** Milliseconds before the first token of a stream, or before a whole answer. */
  ttftMs?: number;
  /** Milliseconds between a stream's tokens. */
  itlMs?: number;
  /** The tokens of every answer (default `TOKENS`). */
  tokens?: string[];
  /** Prompt tokens reported in usage (default 1). */
  promptTokens?: number;
  usage?: "requested" | "never" | "always";
  /** Serve `GET /metrics` in this engine's format (absent: 404, as a server without metrics). */
  metrics?: EngineMetricsOptions;
}

export interface EngineMetricsOptions {
  engine: "vllm" | "sglang";
  /** SGLang's metric prefix: `sglang:` (default) or `sglang_` (v0.5.4 on). */
  prefix?: "sglang:" | "sglang_";
  /** Requests the engine runs at once (its batch); the rest wait (default 4). */
  maxRunning?: number;
  /** Series per gauge (vLLM `engine` indexes, SGLang `dp_rank`s); the load is split between them (default 1). */
  ranks?: number;
  /** The served model name label (default "fake-model"). */
  model?: string;
}

export interface FakeModelServer {
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly requests: SeenRequest[];
  /** Streamed answers wait for this between tokens while `gated` is true. */
  gated: boolean;
  /** Lets the next token of every gated stream go. */
  release(): void;
  /** Generation requests open now (what `/metrics` reports as running + waiting). */
  readonly active: number;
  /** `GET /metrics` answered so far. */
  readonly scrapes: number;
  close(): Promise<void>;
}

export const TOKENS = ["Hello", ",", " world", "!"];

function readJson(req: IncomingMessage): Promise<{ text: string; json: Record<string, unknown> | null }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", reject);
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve({ text, json: JSON.parse(text) as Record<string, unknown> });
      } catch {
        resolve({ text, json: null });
      }
    });
  });
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

export async function startFakeModelServer(
  name: string,
  prefixOrOptions: string | ModelServerOptions = {},
): Promise<FakeModelServer> {
  const options = typeof prefixOrOptions === "string" ? { prefix: prefixOrOptions } : prefixOrOptions;
  const prefix = options.prefix ?? "/v1";
  const tokens = options.tokens ?? TOKENS;
  const promptTokens = options.promptTokens ?? 1;
  const usageMode = options.usage ?? "requested";
  let waiters: (() => void)[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const state = {
    gated: false,
    release() {
      for (const w of waiters.splice(0)) w();
    },
  };
  /** Waits before token `i` of a stream (0: the first). */
  const nextToken = (i: number) =>
    state.gated
      ? new Promise<void>((resolve) => waiters.push(resolve))
      : sleep(i === 0 ? (options.ttftMs ?? 0) : (options.itlMs ?? 0));
  const requests: SeenRequest[] = [];
  const created = Math.floor(Date.now() / 1000);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: tokens.length,
    total_tokens: promptTokens + tokens.length,
  };

  const error = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code: null } }));
  };

  /** A stream of `event(token, i)` data events, one per token, then `finish` events and `[DONE]`. */
  const stream = async (
    res: ServerResponse,
    first: string | null,
    event: (token: string) => string,
    finish: string[],
  ): Promise<void> => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    // Gated, the role chunk goes at once (tests step through the tokens); timed, with the first token.
    let opening = first === null ? "" : `data: ${first}\n\n`;
    if (opening && state.gated) {
      res.write(opening);
      opening = "";
    }
    for (let i = 0; i < tokens.length; i++) {
      await nextToken(i);
      if (res.destroyed) return;
      res.write(`${i === 0 ? opening : ""}data: ${event(tokens[i]!)}\n\n`);
    }
    await nextToken(tokens.length);
    if (res.destroyed) return;
    for (const f of finish) res.write(`data: ${f}\n\n`);
    res.end("data: [DONE]\n\n");
  };

  let active = 0;
  let scrapes = 0;
  let promptTotal = 0;
  let generationTotal = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? "";
    const pathname = path.split("?")[0];
    if (pathname === "/metrics" && req.method === "GET") {
      if (!options.metrics) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("Not Found");
        return;
      }
      scrapes++;
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(engineExposition(options.metrics, { active, prompt: promptTotal, generation: generationTotal, created }));
      return;
    }
    const { text, json } = await readJson(req);
    requests.push({ method: req.method ?? "", path, host: req.headers.host, body: text });
    if (pathname === `${prefix}/chat/completions` || pathname === `${prefix}/completions` || pathname === "/generate") {
      // The engine's load: open from the request's arrival until its response is over.
      active++;
      promptTotal += promptTokens;
      res.once("close", () => {
        active--;
        generationTotal += tokens.length;
      });
    }
    const model = typeof json?.model === "string" ? json.model : "unknown";
    const id = `${name}-${requests.length}`;
    // Replicas often send their own CORS header; the proxy replaces it.
    res.setHeader("access-control-allow-origin", "https://replica.invalid");
    if (req.method !== "POST" || json === null) {
      error(res, 400, "bad request");
      return;
    }
    const streamOptions = json.stream_options as { include_usage?: unknown } | null | undefined;
    if (streamOptions != null && json.stream !== true) {
      error(res, 400, "Stream options can only be defined when `stream=True`.");
      return;
    }
    const withUsage =
      usageMode === "always" ||
      (usageMode === "requested" && streamOptions != null && streamOptions.include_usage !== false);
    const common = { id, created, model, system_fingerprint: name };
    const usageChunk = (object: string) => JSON.stringify({ ...common, object, choices: [], usage });
    const whole = usageMode === "never" ? {} : { usage };
    if (pathname === `${prefix}/chat/completions`) {
      const chunk = (delta: Record<string, unknown>, finish: string | null) =>
        JSON.stringify({
          ...common,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        });
      if (json.stream === true) {
        const finish = [chunk({}, "stop"), ...(withUsage ? [usageChunk("chat.completion.chunk")] : [])];
        await stream(res, chunk({ role: "assistant", content: "" }, null), (t) => chunk({ content: t }, null), finish);
        return;
      }
      await sleep(options.ttftMs ?? 0);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          ...common,
          object: "chat.completion",
          choices: [{ index: 0, message: { role: "assistant", content: tokens.join("") }, finish_reason: "stop" }],
          ...whole,
        }),
      );
      return;
    }
    if (pathname === `${prefix}/completions`) {
      const choice = (t: string, finish: string | null) => ({
        index: 0,
        text: t,
        logprobs: null,
        finish_reason: finish,
      });
      if (json.stream === true) {
        const chunk = (t: string, finish: string | null) =>
          JSON.stringify({ ...common, object: "text_completion", choices: [choice(t, finish)] });
        const finish = [chunk("", "stop"), ...(withUsage ? [usageChunk("text_completion")] : [])];
        await stream(res, null, (t) => chunk(t, null), finish);
        return;
      }
      await sleep(options.ttftMs ?? 0);
      res.writeHead(200, { "content-type": "application/json" });
      const completion = options.tokens ? tokens.join("") : ` from ${name}`;
      const counts = options.tokens ? usage : { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
      res.end(
        JSON.stringify({
          ...common,
          object: "text_completion",
          choices: [choice(completion, "stop")],
          ...(usageMode === "never" ? {} : { usage: counts }),
        }),
      );
      return;
    }
    if (pathname === "/generate") {
      // SGLang's native API: cumulative text, the engine's counts in meta_info.
      const meta = (n: number, finish: unknown) => ({
        id,
        finish_reason: finish,
        prompt_tokens: promptTokens,
        completion_tokens: n,
        cached_tokens: 0,
      });
      if (json.stream === true) {
        let n = 0;
        await stream(
          res,
          null,
          () => {
            n++;
            return JSON.stringify({ text: tokens.slice(0, n).join(""), meta_info: meta(n, null) });
          },
          [],
        );
        return;
      }
      await sleep(options.ttftMs ?? 0);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ text: tokens.join(""), meta_info: meta(tokens.length, { type: "stop" }) }));
      return;
    }
    error(res, 404, `no route ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    requests,
    get gated() {
      return state.gated;
    },
    set gated(value: boolean) {
      state.gated = value;
      if (!value) state.release();
    },
    release: () => state.release(),
    get active() {
      return active;
    },
    get scrapes() {
      return scrapes;
    },
    close: () =>
      new Promise<void>((resolve) => {
        state.release();
        waiters = [];
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The exposition of an engine carrying `active` requests, in its published format (metric names,
 * HELP/TYPE lines and labels of vLLM v1 and SGLang; `../shared/reference/llm-serving-protocols.md` §1).
 */
/** A float as prometheus_client writes it (Python's repr: `2.0`, `0.25`). */
const pyFloat = (x: number) => (Number.isInteger(x) ? x.toFixed(1) : String(x));

export function engineExposition(
  o: EngineMetricsOptions,
  load: { active: number; prompt: number; generation: number; created: number },
): string {
  const maxRunning = o.maxRunning ?? 4;
  const ranks = o.ranks ?? 1;
  const model = o.model ?? "fake-model";
  const running = Math.min(load.active, maxRunning);
  const waiting = load.active - running;
  // The load split over the ranks as a DP scheduler would: the first ones take the remainder.
  const share = (n: number, rank: number) => Math.floor(n / ranks) + (rank < n % ranks ? 1 : 0);
  const kv = (rank: number) => share(running, rank) / Math.max(1, share(maxRunning, rank));
  const lines: string[] = [];
  const family = (
    name: string,
    type: string,
    help: string,
    value: (rank: number) => number,
    labels: (r: number) => string,
  ) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (let r = 0; r < ranks; r++) lines.push(`${name}{${labels(r)}} ${pyFloat(value(r))}`);
  };
  const counter = (name: string, help: string, total: number, labels: (r: number) => string) => {
    family(`${name}_total`, "counter", help, (r) => share(total, r), labels);
    family(`${name}_created`, "gauge", help, () => load.created, labels);
  };
  if (o.engine === "vllm") {
    const labels = (r: number) => `engine="${r}",model_name="${model}"`;
    family(
      "vllm:num_requests_running",
      "gauge",
      "Number of requests in model execution batches.",
      (r) => share(running, r),
      labels,
    );
    family(
      "vllm:num_requests_waiting",
      "gauge",
      "Number of requests waiting to be processed.",
      (r) => share(waiting, r),
      labels,
    );
    family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", kv, labels);
    counter(
      "vllm:prefix_cache_queries",
      "Prefix cache queries, in terms of number of queried tokens.",
      load.prompt,
      labels,
    );
    counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", 0, labels);
    counter("vllm:prompt_tokens", "Number of prefill tokens processed.", load.prompt, labels);
    counter("vllm:generation_tokens", "Number of generation tokens processed.", load.generation, labels);
  } else {
    const p = o.prefix ?? "sglang:";
    const labels = (r: number) =>
      `dp_rank="${r}",engine_type="unified",model_name="${model}",moe_ep_rank="0",pp_rank="0",tp_rank="0"`;
    const tokenizer = () => `engine_type="unified",model_name="${model}"`;
    family(`${p}num_running_reqs`, "gauge", "The number of running requests.", (r) => share(running, r), labels);
    family(
      `${p}num_queue_reqs`,
      "gauge",
      "The number of requests in the waiting queue.",
      (r) => share(waiting, r),
      labels,
    );
    family(`${p}token_usage`, "gauge", "The token usage.", kv, labels);
    family(`${p}cache_hit_rate`, "gauge", "The prefix cache hit rate.", () => 0, labels);
    // Tokenizer-manager counters: one series (no rank labels).
    lines.push(
      `# HELP ${p}prompt_tokens_total Number of prefill tokens processed.`,
      `# TYPE ${p}prompt_tokens_total counter`,
      `${p}prompt_tokens_total{${tokenizer()}} ${pyFloat(load.prompt)}`,
      `# HELP ${p}cached_tokens_total Number of cached prompt tokens.`,
      `# TYPE ${p}cached_tokens_total counter`,
      `${p}cached_tokens_total{${tokenizer()}} 0.0`,
      `# HELP ${p}generation_tokens_total Number of generation tokens processed.`,
      `# TYPE ${p}generation_tokens_total counter`,
      `${p}generation_tokens_total{${tokenizer()}} ${pyFloat(load.generation)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
