/**
 * @module
 * Reads a request body whole, within a limit: for a service whose policy routes on the body's text
 * (cache_aware) and for the OpenAI entrypoint, which must read `model` before it knows the service.
 * The same bytes are then forwarded. Every other body is read up to a bound by `body-buffer.ts`, then streams.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyContext } from "./context.ts";
import { replyJson } from "./replies.ts";

/** The 408's message when a body stalls longer than the read timeout (`body-buffer.ts`). */
export function bodyTimedOut(ctx: ProxyContext): string {
  return `the request body stalled: nothing arrived for ${ctx.settings.body.readTimeoutMs / 1000} s`;
}

export interface BodyLimit {
  /** Bytes allowed; 0 = no limit. */
  limit: number;
  /**
   * Asked once, when the body first passes `limit`, with what has arrived so far: a new limit to
   * keep reading under (the entrypoint learns the service, hence its own limit, from the body).
   */
  raise?: (received: Buffer) => number;
  /** Nothing arrived for the body read timeout (default: a JSON 408, then close). */
  timedOut?: () => void;
}

/**
 * Calls `done` with the body, or `tooLarge` with the limit in force once the body passes it.
 * Neither is called when the client goes away; a body that stalls longer than the read timeout
 * (`body-buffer.ts`) gets 408 instead. Counted as an exchange so a closing server waits for it.
 */
export function readBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  bound: BodyLimit,
  done: (body: Buffer) => void,
  tooLarge: (limit: number) => void,
): void {
  ctx.begin();
  const chunks: Buffer[] = [];
  let size = 0;
  let limit = bound.limit > 0 ? bound.limit : Number.POSITIVE_INFINITY;
  let raise = bound.raise;
  let settled = false;
  const timer = setTimeout(() => {
    if (!settle()) return;
    if (bound.timedOut) bound.timedOut();
    else replyJson(res, 408, bodyTimedOut(ctx), { close: true });
  }, ctx.settings.body.readTimeoutMs);
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    req.off("data", onData);
    req.off("end", onEnd);
    req.off("error", onGone);
    res.off("close", onGone);
    ctx.end();
    return true;
  };
  const onGone = () => {
    settle();
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    timer.refresh();
    if (size <= limit) return;
    if (raise) {
      const raised = raise(Buffer.concat(chunks, size));
      raise = undefined;
      limit = raised > 0 ? raised : Number.POSITIVE_INFINITY;
      if (size <= limit) return;
    }
    if (settle()) tooLarge(limit);
  };
  const onEnd = () => {
    if (settle()) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  };
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onGone);
  res.on("close", onGone);
}
