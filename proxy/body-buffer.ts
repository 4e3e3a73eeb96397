/**
 * @module
 * Request bodies are read before a replica is dialled, as nginx does (`proxy_request_buffering on`):
 * a client that trickles its body holds a proxy socket and a little memory, never a replica
 * connection. Memory stays bounded twice: one body is buffered up to `requestBytes` (then the
 * replica is dialled and the rest streams through, so large uploads still work), and the bodies a
 * process is buffering hold at most `processBytes` together (past it, requests stream as they come,
 * as with no buffering). Between two reads of a body being read at most `readTimeoutMs` may pass
 * (nginx's `client_body_timeout`): 408 then. Bodies read whole for other reasons (cache_aware, the
 * OpenAI entrypoint: `read-body.ts`, whose `watchBody` both readers share) are not read again. The
 * bounds and the budget: `body-budget.ts`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { BodyLimit } from "./body-limit.ts";
import type { ProxyContext } from "./context.ts";
import { forward } from "./forward.ts";
import type { RequestHead } from "./headers.ts";
import { routingTextOf } from "./policies/routing-text.ts";
import { bodyTimedOut, readBody, watchBody } from "./read-body.ts";
import { replyJson } from "./replies.ts";
import type { ServiceRoute } from "./routes.ts";

/** What becomes of a body: exactly one is called, none when the client goes away. */
export interface BodyOutcome {
  /** The whole body, read within the bounds. */
  whole(body: Buffer): void;
  /** A bound was reached: what arrived, then the rest as it comes (within `client_max_body_size`). */
  streaming(body: Readable): void;
  /** The body passed `client_max_body_size` while being buffered. */
  tooLarge(limit: number): void;
  /** Nothing arrived for `readTimeoutMs`. */
  timedOut(): void;
}

/**
 * Buffers `req`'s body (`limit`: the service's `client_max_body_size`, 0 = none), then hands it on.
 * The bytes held count against the process's budget until the exchange's response closes (the
 * exchange keeps the body for a retry). Counted as an exchange so a closing server waits for it.
 */
export function bufferBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  outcome: BodyOutcome,
): void {
  const bound = ctx.settings.body.requestBytes;
  const budget = ctx.bodies;
  const chunks: Buffer[] = [];
  let size = 0;
  let held = 0;
  const giveBack = () => budget.give(held);
  const { settle, refresh } = watchBody(ctx, req, res, {
    data(chunk) {
      chunks.push(chunk);
      size += chunk.length;
      if (limit > 0 && size > limit) {
        if (settle()) {
          giveBack();
          outcome.tooLarge(limit);
        }
        return;
      }
      if (size <= bound && budget.take(chunk.length)) {
        held += chunk.length;
        refresh();
        return;
      }
      // A bound is reached: dial the replica and stream the rest. The limiter counts what was
      // buffered, and stands between the client's request and undici (which destroys a failed body).
      if (!settle()) return;
      res.once("close", giveBack);
      const rest = new BodyLimit(limit > 0 ? limit : Number.POSITIVE_INFINITY);
      for (const c of chunks) rest.write(c);
      req.pipe(rest);
      outcome.streaming(rest);
    },
    end() {
      if (!settle()) return;
      res.once("close", giveBack);
      outcome.whole(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    },
    timedOut() {
      if (!settle()) return;
      giveBack();
      outcome.timedOut();
    },
    gone() {
      if (settle()) giveBack();
    },
  });
}

/** Forwards a request that has a body: read whole for a policy that needs its text, else buffered up to the bound. */
export function forwardWithBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  startedAt: number,
): void {
  const cors = route.model !== null;
  const tooLarge = () =>
    replyJson(res, 413, `request body larger than client_max_body_size (${route.maxBodySize} bytes)`, {
      close: true,
      cors,
    });
  const timedOut = () => replyJson(res, 408, bodyTimedOut(ctx), { close: true, cors });
  if (route.balancer.policy.needsText) {
    // The tree policies (cache_aware, prefix_load) route on the body's text: read it (within the service's limit), then send the same bytes.
    const send = (body: Buffer) => forward(ctx, req, res, route, head, path, startedAt, body, routingTextOf(body));
    readBody(ctx, req, res, { limit: route.maxBodySize, timedOut }, send, tooLarge);
    return;
  }
  if (ctx.settings.body.requestBytes === 0) {
    // Buffering is off: the body streams to the replica as it comes.
    forward(ctx, req, res, route, head, path, startedAt);
    return;
  }
  // Read the body (up to the bound) before dialling: a slow upload holds no replica connection.
  const send = (body: Buffer | Readable) => forward(ctx, req, res, route, head, path, startedAt, body);
  bufferBody(ctx, req, res, route.maxBodySize, { whole: send, streaming: send, tooLarge, timedOut });
}
