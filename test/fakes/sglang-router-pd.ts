/**
 * @module
 * The fake SGLang router's PD exchange (sglang-router.ts), as SMG's HTTP PD router does it
 * (`/work/shared/reference/llm-serving-protocols.md` §3.1, `pd_router.rs`): the bootstrap fields
 * injected into the client's body (proxy/pd/bootstrap.ts: the one implementation of SGLang's rule),
 * the same body to both workers at once, decode's status checked first, prefill's body read to its
 * end, then decode's answer relayed as it streams.
 */
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import { withBootstrap } from "../../proxy/pd/bootstrap.ts";

export interface PdExchange {
  /** The client's body, as sent. */
  raw: Buffer;
  path: string;
  accept: string;
  prefill: { url: string; bootstrapPort: number | null };
  decode: { url: string };
}

function reply(res: ServerResponse, status: number, body: unknown) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
  });
  res.end(text);
}

/** A side that answered non-2xx: its status and text, for a stream as one SSE `error` event. */
function sideError(res: ServerResponse, status: number, message: string, stream: boolean) {
  if (!stream) return reply(res, status, { error: { message, status } });
  res.writeHead(status, { "content-type": "text/event-stream" });
  res.end(`data: ${JSON.stringify({ error: { message, status } })}\n\n`);
}

export async function exchangePd(x: PdExchange, res: ServerResponse): Promise<void> {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(x.raw.toString("utf8")) as Record<string, unknown>;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not a JSON object");
  } catch (error) {
    return reply(res, 400, `Failed to parse the request body as JSON: ${(error as Error).message}`);
  }
  const payload = withBootstrap(x.raw, body, x.path, {
    host: new URL(x.prefill.url).hostname,
    port: x.prefill.bootstrapPort,
  });
  const stream = body.stream === true;
  const call = (url: string) =>
    fetch(`${url.replace(/\/+$/, "")}${x.path}`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: x.accept },
      body: payload,
    });
  let answers: [Response, Response];
  try {
    answers = await Promise.all([call(x.prefill.url), call(x.decode.url)]);
  } catch (error) {
    return reply(res, 502, { error: { message: `PD request failed: ${(error as Error).message}`, status: 502 } });
  }
  const [fromPrefill, fromDecode] = answers;
  if (!fromDecode.ok) {
    const text = await fromDecode.text();
    await fromPrefill.arrayBuffer().catch(() => undefined);
    return sideError(res, fromDecode.status, `Decode server error: ${text}`, stream);
  }
  const prefillText = await fromPrefill.text().catch(() => "");
  if (!fromPrefill.ok) {
    await fromDecode.body?.cancel();
    return sideError(res, fromPrefill.status, `Prefill server error: ${prefillText}`, stream);
  }
  res.writeHead(fromDecode.status, { "content-type": fromDecode.headers.get("content-type") ?? "application/json" });
  if (!fromDecode.body) return void res.end();
  Readable.fromWeb(fromDecode.body as ReadableStream).pipe(res);
}
