/**
 * @module
 * Reads a request body whole, within a limit, for a service whose policy routes on the body's text
 * (cache_aware): the same bytes are then forwarded. Only those services pay for it; every other
 * body streams through `forward.ts` untouched.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyContext } from "./context.ts";

/**
 * Calls `done` with the body, or `tooLarge` once it passes `limit` bytes (0 = no limit). Neither is
 * called when the client goes away. Counted as an exchange so a closing server waits for it.
 */
export function readBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  done: (body: Buffer) => void,
  tooLarge: () => void,
): void {
  ctx.begin();
  const chunks: Buffer[] = [];
  let size = 0;
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
    if (limit > 0 && size > limit && settle()) tooLarge();
  };
  const onEnd = () => {
    if (settle()) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
  };
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onGone);
  res.on("close", onGone);
}
