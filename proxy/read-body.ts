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

/** What a body read hears: each chunk, the end, a stall past the read timeout, the client gone. */
export interface BodyWatch {
  data(chunk: Buffer): void;
  end(): void;
  timedOut(): void;
  gone(): void;
}

/**
 * Listens to `req`'s body for one reader, counted as an exchange so a closing server waits for it.
 * Returns `settle`: it stops listening (the timer too) and says whether this call was the first, so
 * exactly one of the reader's outcomes happens. The reader calls `refresh` on progress it counts.
 */
export function watchBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  watch: BodyWatch,
): { settle: () => boolean; refresh: () => void } {
  ctx.begin();
  let settled = false;
  const onData = (chunk: Buffer) => watch.data(chunk);
  const onEnd = () => watch.end();
  const onGone = () => watch.gone();
  const timer = setTimeout(() => watch.timedOut(), ctx.settings.body.readTimeoutMs);
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
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onGone);
  res.on("close", onGone);
  return { settle, refresh: () => timer.refresh() };
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
  const chunks: Buffer[] = [];
  let size = 0;
  let limit = bound.limit > 0 ? bound.limit : Number.POSITIVE_INFINITY;
  let raise = bound.raise;
  const { settle, refresh } = watchBody(ctx, req, res, {
    data(chunk) {
      chunks.push(chunk);
      size += chunk.length;
      refresh();
      if (size <= limit) return;
      if (raise) {
        const raised = raise(Buffer.concat(chunks, size));
        raise = undefined;
        limit = raised > 0 ? raised : Number.POSITIVE_INFINITY;
        if (size <= limit) return;
      }
      if (settle()) tooLarge(limit);
    },
    end() {
      if (settle()) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    },
    timedOut() {
      if (!settle()) return;
      if (bound.timedOut) bound.timedOut();
      else replyJson(res, 408, bodyTimedOut(ctx), { close: true });
    },
    gone() {
      settle();
    },
  });
}
