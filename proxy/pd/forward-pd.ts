/**
 * @module
 * Where a PD request enters the built-in PD routing (docs/pd.md): its JSON body is read (here, or by
 * the OpenAI entrypoint) and parsed, the routing text taken for the prefill policy, and the request
 * handed to its `PdExchange` (`pd-exchange.ts`), which admits, routes, sends both sides and relays.
 * Kept apart from `forward.ts`'s `Exchange` (one replica per attempt): this path always buffers the
 * body and waits for both heads, which undici's `request` API expresses plainly.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyContext } from "../context.ts";
import type { RequestHead } from "../headers.ts";
import { routingTextOf } from "../policies/routing-text.ts";
import { bodyTimedOut, readBody } from "../read-body.ts";
import { replyJson } from "../replies.ts";
import type { ServiceRoute } from "../routes.ts";
import { PdExchange } from "./pd-exchange.ts";

/** Serves a PD request of a route with `pd` set (the caller checked `isPdRequest`). */
export function forwardPd(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  startedAt: number,
): void {
  const cors = route.model !== null;
  const pd = route.pd!;
  if (pd.unroutable) {
    replyJson(res, 503, pd.unroutable, { cors, close: head.chunked || head.contentLength > 0 });
    return;
  }
  const tooLarge = () =>
    replyJson(res, 413, `request body larger than client_max_body_size (${route.maxBodySize} bytes)`, {
      close: true,
      cors,
    });
  const timedOut = () => replyJson(res, 408, bodyTimedOut(ctx), { close: true, cors });
  readBody(
    ctx,
    req,
    res,
    { limit: route.maxBodySize, timedOut },
    (body) => forwardPdBody(ctx, req, res, route, head, path, startedAt, body),
    tooLarge,
  );
}

/** Serves a PD request whose body was read already (here, or by the OpenAI entrypoint). */
export function forwardPdBody(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  startedAt: number,
  body: Buffer,
): void {
  const cors = route.model !== null;
  const pd = route.pd!;
  if (pd.unroutable) {
    replyJson(res, 503, pd.unroutable, { cors });
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    parsed = null;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    replyJson(res, 400, "a disaggregated request needs a JSON object body", { cors });
    return;
  }
  const text = pd.prefill.policy.needsText ? routingTextOf(body) : "";
  const fields = parsed as Record<string, unknown>;
  new PdExchange(ctx, res, route, head, path, startedAt, body, fields, text, req.headers).start();
}
