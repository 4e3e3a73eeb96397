/**
 * @module
 * The streaming upstream: every `GET` opens a `text/event-stream` of `chunks` events, one per tick
 * of a shared timer (token streaming as an LLM server does it): OpenAI chat completion chunks as
 * vLLM writes them, one token each, then `data: [DONE]`. One timer drives every stream so the
 * upstream's own cost stays small and even.
 */
import { createServer, type ServerResponse } from "node:http";

export interface SseUpstream {
  readonly port: number;
  close(): Promise<void>;
}

/** One chat completion chunk carrying `token` (vLLM's serialization: compact, no usage key). */
export function chatChunk(index: number, token: string): string {
  return `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"${token}"},"logprobs":null,"finish_reason":null}],"index":${index}}\n\n`;
}

export async function startSseUpstream(chunks: number, intervalMs: number): Promise<SseUpstream> {
  const streams = new Map<ServerResponse, number>();
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      // Lets nginx pass events through unbuffered, as dstack's OpenAI endpoint asks it to.
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    streams.set(res, 0);
    res.once("close", () => streams.delete(res));
  });
  server.keepAliveTimeout = 75_000;
  const timer = setInterval(() => {
    for (const [res, sent] of streams) {
      const n = sent + 1;
      res.write(chatChunk(n, " lorem"));
      if (n >= chunks) {
        streams.delete(res);
        res.end("data: [DONE]\n\n");
      } else streams.set(res, n);
    }
  }, intervalMs);
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
