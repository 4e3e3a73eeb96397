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
 *
 * Load (`load`, test/fakes/engine-load.ts): latency follows the load as an engine's does — at most
 * `maxRunning` requests run and the rest queue (their first token waits for a slot), and the first
 * token also waits `prefillMsPerChar` per prompt character this server's prefix cache does not hold;
 * `/metrics` then reports the running and waiting requests and the prefix-cache hits from it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type EngineMetricsOptions, engineExposition } from "./engine-exposition.ts";
import { EngineLoad, type EngineLoadOptions, promptText } from "./engine-load.ts";

export { type EngineMetricsOptions, engineExposition };

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
  /** Latency that follows the load (queueing, prefill of uncached prompt characters); `maxRunning` defaults to the metrics'. */
  load?: EngineLoadOptions;
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
  /** The engine's queue and prefix cache, with `load`. */
  readonly engine: EngineLoad | null;
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
  const engine = options.load ? new EngineLoad({ maxRunning: options.metrics?.maxRunning, ...options.load }) : null;
  /** Waits before token `i` of a stream (0: the first, after `ttftMs`). */
  const nextToken = (i: number, ttftMs: number) =>
    state.gated
      ? new Promise<void>((resolve) => waiters.push(resolve))
      : sleep(i === 0 ? ttftMs : (options.itlMs ?? 0));
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
    ttftMs: number,
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
      await nextToken(i, ttftMs);
      if (res.destroyed) return;
      res.write(`${i === 0 ? opening : ""}data: ${event(tokens[i]!)}\n\n`);
    }
    await nextToken(tokens.length, ttftMs);
    if (res.destroyed) return;
    for (const f of finish) res.write(`data: ${f}\n\n`);
    res.end("data: [DONE]\n\n");
  };

  let active = 0;
  let scrapes = 0;
  let promptTotal = 0;
  let generationTotal = 0;
  let cachedTotal = 0;
  const generation = (pathname: string | undefined) =>
    pathname === `${prefix}/chat/completions` || pathname === `${prefix}/completions` || pathname === "/generate";
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? "";
    const pathname = path.split("?")[0];
    // vLLM's and SGLang's liveness endpoint: 200 with an empty body while the engine is up (the
    // gateway's health checks ask it, docs/health.md); not counted as a request.
    if (pathname === "/health" && req.method === "GET") {
      res.writeHead(200, { "content-length": "0" });
      res.end();
      return;
    }
    if (pathname === "/metrics" && req.method === "GET") {
      if (!options.metrics) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("Not Found");
        return;
      }
      scrapes++;
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      const queue = engine ? { running: engine.running, waiting: engine.waiting } : {};
      res.end(
        engineExposition(options.metrics, {
          active,
          ...queue,
          prompt: promptTotal,
          cached: cachedTotal,
          generation: generationTotal,
          created,
        }),
      );
      return;
    }
    const { text, json } = await readJson(req);
    requests.push({ method: req.method ?? "", path, host: req.headers.host, body: text });
    if (generation(pathname)) {
      // The engine's load: open from the request's arrival until its response is over.
      active++;
      promptTotal += promptTokens;
      res.once("close", () => {
        active--;
        generationTotal += tokens.length;
      });
    }
    // The first token waits for a slot and the prefill of what the cache lacks (tokens ≈ chars / 4).
    let ttftMs = options.ttftMs ?? 0;
    if (engine && json !== null && generation(pathname)) {
      const prompt = promptText(json);
      const admission = await engine.admit(prompt, () => res.destroyed);
      // Prompt tokens as the engine counts them (≈ chars / 4), at least what usage reports.
      promptTotal += Math.max(0, Math.ceil(prompt.length / 4) - promptTokens);
      res.once("close", admission.release);
      if (res.destroyed) admission.release();
      ttftMs += admission.prefillMs;
      cachedTotal += Math.floor(admission.cachedChars / 4);
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
        await stream(
          res,
          chunk({ role: "assistant", content: "" }, null),
          (t) => chunk({ content: t }, null),
          finish,
          ttftMs,
        );
        return;
      }
      await sleep(ttftMs);
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
        await stream(res, null, (t) => chunk(t, null), finish, ttftMs);
        return;
      }
      await sleep(ttftMs);
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
          ttftMs,
        );
        return;
      }
      await sleep(ttftMs);
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
    engine,
    close: () =>
      new Promise<void>((resolve) => {
        state.release();
        waiters = [];
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
