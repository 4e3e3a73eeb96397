/**
 * @module
 * Reads a request body whole, within a limit: for a service whose policy routes on the body's text
 * (cache_aware) and for the OpenAI entrypoint, which must read `model` before it knows the service.
 * The same bytes are then forwarded. Every other body streams through `forward.ts` untouched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyContext } from "./context.ts";

export interface BodyLimit {
  /** Bytes allowed; 0 = no limit. */
  limit: number;
  /**
   * Asked once, when the body first passes `limit`, with what has arrived so far: a new limit to
   * keep reading under (the entrypoint learns the service, hence its own limit, from the body).
   */
  raise?: (received: Buffer) => number;
}

/**
 * Calls `done` with the body, or `tooLarge` with the limit in force once the body passes it.
 * Neither is called when the client goes away. Counted as an exchange so a closing server waits for it.
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
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
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
