/**
 * A replica that speaks enough of the OpenAI protocol for the entrypoint tests: `/v1/chat/completions`
 * (whole or streamed as SSE tokens ending in `data: [DONE]`) and `/v1/completions`. Every answer
 * names the server (`system_fingerprint`) so tests see which replica served a request; a streamed
 * answer waits for `release()` between tokens when `gated` is set, so tests can prove chunks arrive
 * one by one.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  path: string;
  host: string | undefined;
  body: string;
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

export async function startFakeModelServer(name: string, prefix = "/v1"): Promise<FakeModelServer> {
  let waiters: (() => void)[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const state = {
    gated: false,
    release() {
      for (const w of waiters.splice(0)) w();
    },
  };
  const nextToken = () =>
    state.gated ? new Promise<void>((resolve) => waiters.push(resolve)) : new Promise((r) => setImmediate(r));
  const requests: SeenRequest[] = [];
  const created = Math.floor(Date.now() / 1000);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { text, json } = await readJson(req);
    const path = req.url ?? "";
    const pathname = path.split("?")[0];
    requests.push({ method: req.method ?? "", path, host: req.headers.host, body: text });
    const model = typeof json?.model === "string" ? json.model : "unknown";
    const id = `${name}-${requests.length}`;
    // Replicas often send their own CORS header; the proxy replaces it.
    res.setHeader("access-control-allow-origin", "https://replica.invalid");
    if (req.method !== "POST" || json === null) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "bad request", type: "invalid_request_error" } }));
      return;
    }
    if (pathname === `${prefix}/chat/completions`) {
      if (json.stream === true) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.flushHeaders();
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          `data: ${JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model,
            system_fingerprint: name,
            choices: [{ index: 0, delta, finish_reason: finish }],
          })}\n\n`;
        res.write(chunk({ role: "assistant", content: "" }, null));
        for (const token of TOKENS) {
          await nextToken();
          if (res.destroyed) return;
          res.write(chunk({ content: token }, null));
        }
        await nextToken();
        res.write(chunk({}, "stop"));
        res.end("data: [DONE]\n\n");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          object: "chat.completion",
          created,
          model,
          system_fingerprint: name,
          choices: [{ index: 0, message: { role: "assistant", content: TOKENS.join("") }, finish_reason: "stop" }],
          usage: { prompt_tokens: 1, completion_tokens: TOKENS.length, total_tokens: TOKENS.length + 1 },
        }),
      );
      return;
    }
    if (pathname === `${prefix}/completions`) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          object: "text_completion",
          created,
          model,
          system_fingerprint: name,
          choices: [{ index: 0, text: ` from ${name}`, logprobs: null, finish_reason: "stop" }],
          usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
        }),
      );
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: `no route ${path}`, type: "invalid_request_error" } }));
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
    close: () =>
      new Promise<void>((resolve) => {
        state.release();
        waiters = [];
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
