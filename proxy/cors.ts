/**
 * @module
 * CORS for browser clients of model services and the OpenAI-compatible entrypoint, as dstack's nginx
 * does it: any origin, preflights answered by the proxy itself (never forwarded), and the replica's
 * own `Access-Control-Allow-Origin` replaced by `*`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { taggedRequestId } from "./observe/ids.ts";

export const ALLOW_ORIGIN = "access-control-allow-origin";

/** A CORS preflight: `OPTIONS` naming the method the browser wants to use. */
export function isPreflight(req: Pick<IncomingMessage, "method" | "headers">): boolean {
  return req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
}

/** Answers a preflight with 204; the requested headers are echoed (Authorization and Content-Type otherwise). */
export function replyPreflight(req: IncomingMessage, res: ServerResponse, closing: boolean): void {
  const requested = req.headers["access-control-request-headers"];
  const headers = [
    ALLOW_ORIGIN,
    "*",
    "access-control-allow-methods",
    "GET, POST, OPTIONS",
    "access-control-allow-headers",
    typeof requested === "string" && requested.trim() !== "" ? requested : "Authorization, Content-Type",
    "access-control-max-age",
    "86400",
    "content-length",
    "0",
  ];
  const requestId = taggedRequestId(res);
  if (requestId !== undefined) headers.push("x-request-id", requestId);
  if (closing) {
    headers.push("connection", "close");
    res.shouldKeepAlive = false;
  }
  res.writeHead(204, headers);
  res.end();
}

/** A replica's response headers (flat list) with its `Access-Control-Allow-Origin` replaced by `*`. */
export function withAllowOrigin(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== ALLOW_ORIGIN) out.push(headers[i]!, headers[i + 1]!);
  }
  out.push(ALLOW_ORIGIN, "*");
  return out;
}
