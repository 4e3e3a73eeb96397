/**
 * @module
 * What an exchange (`forward.ts`) sends and reads: the request body for replicas (the one read by
 * the caller, with the stream's usage asked for when the gateway withholds it, or the client's
 * request itself, bounded), the replica's response head as the client gets it, the meters a response
 * passes through (`observe/`), and its end.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { BodyLimit } from "./body-limit.ts";
import { withAllowOrigin } from "./cors.ts";
import { type RequestHead, readResponseHead, replaceForwardedHeader } from "./headers.ts";
import { includeUsage, usagePath } from "./observe/include-usage.ts";
import { JsonUsage } from "./observe/json-usage.ts";
import type { Observation } from "./observe/observation.ts";
import { SseMeter } from "./observe/sse-meter.ts";
import { DoneScanner } from "./policies/load.ts";
import type { ServiceRoute } from "./routes.ts";

/**
 * The body to send to replicas: what the caller read (with `stream_options.include_usage` asked when
 * the gateway wants the usage of a stream, `usage: include`), else the client's request itself.
 */
export function requestBody(
  req: IncomingMessage,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  readBody: Buffer | Readable | null,
  observed: Observation | undefined,
): { body: Readable | Buffer | null; withhold: boolean } {
  let out: Readable | Buffer | null = null;
  let withhold = false;
  if (readBody) {
    let body = readBody;
    if (route.usageInclude && Buffer.isBuffer(body) && usagePath(req.method, path)) {
      const asked = includeUsage(body);
      if (asked) {
        body = asked;
        withhold = true;
        replaceForwardedHeader(head, "content-length", String(asked.length));
      }
    }
    // undici sends a Buffer with its Content-Length (the client's, if any, is the same number).
    if (!Buffer.isBuffer(body) || body.length > 0) out = body;
    if (observed) observed.bytesIn = Buffer.isBuffer(readBody) ? readBody.length : Math.max(0, head.contentLength);
  } else if (head.chunked) {
    // The limiter also shields the client connection from undici destroying the body on failure.
    out = route.maxBodySize > 0 ? req.pipe(new BodyLimit(route.maxBodySize)) : req;
  } else if (head.contentLength > 0) {
    out = req;
  }
  if (observed && !readBody && head.contentLength > 0) observed.bytesIn = head.contentLength;
  return { body: out, withhold };
}

/** What reads a response as it passes: an event stream's meter or `[DONE]` scanner, a JSON answer's usage. */
export function responseMeters(
  observed: Observation | undefined,
  withhold: boolean,
  eventStream: boolean,
  json: boolean,
  encoded: boolean,
): { meter: SseMeter | null; scanner: DoneScanner | null } {
  if (eventStream) {
    // A compressed stream cannot be read (nor its usage chunk withheld): it passes as it is.
    if ((observed || withhold) && !encoded) {
      const meter = new SseMeter(withhold);
      if (observed) observed.sse = meter;
      return { meter, scanner: null };
    }
    if (observed) observed.unreadStream = true;
    return { meter: null, scanner: new DoneScanner() };
  }
  if (observed && json && !encoded) observed.json = new JsonUsage();
  return { meter: null, scanner: null };
}

/**
 * Writes a replica's final response head to the client (CORS for model services, `Connection: close`
 * while the proxy closes; event streams flushed at once) and returns the meters its body passes
 * through (`responseMeters`); null when Node refuses a header (invalid characters): nothing was
 * written and the replica's answer is unusable.
 */
export function relayHead(
  res: ServerResponse,
  route: ServiceRoute,
  closing: boolean,
  requestId: string,
  statusCode: number,
  statusText: string,
  rawHeaders: readonly (Buffer | string)[],
  observed: Observation | undefined,
  withhold: boolean,
): { meter: SseMeter | null; scanner: DoneScanner | null } | null {
  const { headers: replicaHeaders, eventStream, json, encoded } = readResponseHead(rawHeaders, requestId);
  const headers = route.model ? withAllowOrigin(replicaHeaders) : replicaHeaders;
  if (closing) {
    headers.push("connection", "close");
    res.shouldKeepAlive = false;
  }
  try {
    if (statusText) res.writeHead(statusCode, statusText, headers);
    else res.writeHead(statusCode, headers);
  } catch {
    return null;
  }
  // Streams (SSE) must reach the client at once, not with the first event.
  if (eventStream) res.flushHeaders();
  return responseMeters(observed, withhold, eventStream, json, encoded);
}

/** Ends the client's response with what the event stream's meter still held (counted as sent), if any. */
export function endResponse(res: ServerResponse, meter: SseMeter | null, observed: Observation | undefined): void {
  const rest = meter?.end();
  if (rest) {
    if (observed) observed.bytesOut += rest.length;
    res.end(rest);
  } else res.end();
}
