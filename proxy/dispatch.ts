/**
 * @module
 * Acting on a routing decision (`route-request.ts`): forward the request (after its rate limit,
 * buffering its body first), serve the entrypoint or a preflight, park it for a service scaled to
 * zero (`hold.ts`), redirect it to HTTPS, or answer it here. Upgrades are tunnelled or refused the
 * same way, on the raw socket. Requests answered here never reach a replica and are not counted in
 * the stats; their observation (`observe/observation.ts`) learns the service and the rate-limit
 * verdict here, so their records name them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { dropCredential } from "./auth.ts";
import { forwardWithBody } from "./body-buffer.ts";
import type { ProxyContext } from "./context.ts";
import { replyPreflight } from "./cors.ts";
import { forward } from "./forward.ts";
import { type RequestHead, useTargetAuthority } from "./headers.ts";
import type { HoldQueue } from "./hold.ts";
import { taggedRequestId } from "./observe/ids.ts";
import { observation } from "./observe/observation.ts";
import { servePublicMetrics } from "./observe/public-metrics.ts";
import { serveEntrypoint } from "./openai-entrypoint.ts";
import { forwardPd } from "./pd/forward-pd.ts";
import { isPdRequest } from "./pd/pd-route.ts";
import { checkRateLimit, replyRateLimited, replyRateLimitedRaw, setHeaders } from "./rate-limit.ts";
import { replyJson, replyRaw, replyText } from "./replies.ts";
import type { Routed } from "./route-request.ts";
import type { RoutingTable, ServiceRoute } from "./routes.ts";
import { tunnel } from "./websocket.ts";

/** What dispatching shares across the exchanges of one process. */
export interface Dispatch {
  readonly ctx: ProxyContext;
  readonly holds: HoldQueue;
  /** Seconds in the `Retry-After` of a 503 for a service without replicas. */
  readonly retryAfterSeconds: number;
  /** The host's metrics, rendered for Prometheus (`GET /metrics` when public). */
  readonly exposition: () => Promise<string>;
}

/** The head rewrites the decision carries, in the order the replica's head was always built. */
function rewriteHead(head: RequestHead, authority: string | null, route: ServiceRoute | null): void {
  if (authority !== null) useTargetAuthority(head, authority);
  if (route) dropCredential(route, head);
}

/**
 * Carries out `routed` for a request. `again`: routes a request anew from its start (a held request
 * whose service got a replica resumes under the table then in force).
 */
export function dispatchRequest(
  d: Dispatch,
  routed: Routed,
  req: IncomingMessage,
  res: ServerResponse,
  head: RequestHead,
  address: string,
  secure: boolean,
  expectsContinue: boolean,
  startedAt: number,
  again: (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void,
): void {
  const { ctx } = d;
  if ("redirect" in routed) {
    redirect(res, routed.redirect, expectsContinue || head.chunked || head.contentLength > 0 || ctx.closing);
    return;
  }
  const observed = observation(res);
  if ("route" in routed) {
    const { route, path } = routed;
    rewriteHead(head, routed.authority, route);
    if (observed) observed.route = route;
    checkRateLimit(ctx, {
      rules: route.rateLimits,
      path,
      rawHeaders: req.rawHeaders,
      address,
      gone: () => res.destroyed,
      admit: (headers) => {
        if (observed && headers) observed.rateLimit = "allowed";
        setHeaders(res, headers);
        if (secure && route.hsts) res.setHeader("strict-transport-security", route.hsts);
        if (expectsContinue) res.writeContinue();
        if (route.pd && isPdRequest(req.method, path)) forwardPd(ctx, req, res, route, head, path, startedAt);
        else if (head.chunked || head.contentLength > 0) forwardWithBody(ctx, req, res, route, head, path, startedAt);
        else forward(ctx, req, res, route, head, path, startedAt);
      },
      // Node discards an unread body after the answer and keeps the connection (nginx does the same).
      refuse: (rule, verdict) => {
        if (observed) observed.rateLimit = "refused";
        replyRateLimited(res, rule, verdict, {
          openai: route.model !== null,
          cors: route.model !== null,
          close: expectsContinue || ctx.closing,
        });
      },
    });
    return;
  }
  if ("hold" in routed) {
    if (observed) observed.route = routed.hold;
    hold(d, routed.hold, res, routed.cors, expectsContinue || head.chunked || head.contentLength > 0, () =>
      again(req, res, expectsContinue),
    );
    return;
  }
  if ("special" in routed) {
    if (routed.special === "entrypoint") {
      rewriteHead(head, routed.authority, null);
      const options = {
        expectsContinue,
        retryAfterSeconds: d.retryAfterSeconds,
        hold: (route: ServiceRoute, unread: boolean, resume: (table: RoutingTable) => void) =>
          hold(d, route, res, true, unread, resume),
      };
      serveEntrypoint(ctx, routed.table, req, res, head, routed.path, startedAt, options);
    } else if (routed.special === "metrics") {
      const unread = expectsContinue || head.chunked || head.contentLength > 0;
      servePublicMetrics(ctx, req, res, routed.table, unread, d.exposition);
    } else {
      replyPreflight(req, res, expectsContinue || head.chunked || head.contentLength > 0 || ctx.closing);
    }
    return;
  }
  if (observed && routed.service) observed.route = routed.service;
  const options = {
    // A refused body may still be on its way (or, after no 100 Continue, may never come): close
    // rather than read it or guess where the next request starts.
    close: expectsContinue || routed.status === 400 || routed.status === 413 || routed.status === 431 || ctx.closing,
    retryAfterSeconds: routed.status === 503 ? d.retryAfterSeconds : undefined,
    cors: routed.cors,
    challenge: routed.challenge,
  };
  if (routed.json) replyJson(res, routed.status, routed.message, options);
  else replyText(res, routed.status, routed.message, options);
}

/** Carries out `routed` for an upgrade: tunnel it, or answer on the raw socket. */
export function dispatchUpgrade(
  d: Dispatch,
  routed: Routed,
  req: IncomingMessage,
  socket: Duplex,
  early: Buffer,
  head: RequestHead,
  address: string,
  startedAt: number,
): void {
  const { ctx } = d;
  if ("redirect" in routed) replyRawRedirect(socket, routed.redirect);
  else if ("route" in routed) {
    const { route, path } = routed;
    rewriteHead(head, routed.authority, route);
    checkRateLimit(ctx, {
      rules: route.rateLimits,
      path,
      rawHeaders: req.rawHeaders,
      address,
      gone: () => socket.destroyed,
      admit: () => tunnel(ctx, req, socket, early, route, head, path, startedAt),
      refuse: (rule, verdict) => replyRateLimitedRaw(socket, rule, verdict),
    });
  } else if ("special" in routed) replyRaw(socket, 404, "no upgrades here");
  else if ("hold" in routed) {
    // Upgrades are not held (a raw socket has no response to park); the replica is still asked for.
    d.holds.signal(routed.hold.name);
    replyRaw(socket, 503, `service ${routed.hold.name} has no replicas`);
  } else replyRaw(socket, routed.status, routed.message);
}

/**
 * Parks a request for a service scaled to zero until a document gives it a replica (then
 * `resume` routes it again, under the new table), or answers 503 with Retry-After when its hold
 * timeout passes or the queue is full. The body is left unread meanwhile (`unread`: then the
 * connection closes after a 503, since the rest of the body cannot be told from a next request).
 */
function hold(
  d: Dispatch,
  route: ServiceRoute,
  res: ServerResponse,
  cors: boolean,
  unread: boolean,
  resume: (table: RoutingTable) => void,
): void {
  const { ctx, holds } = d;
  const refuse = (message: string) =>
    replyJson(res, 503, message, {
      close: unread || ctx.closing,
      retryAfterSeconds: d.retryAfterSeconds,
      cors,
    });
  // Counted as running, so a closing server answers held requests before it stops.
  ctx.begin();
  const outcome = holds.hold(route, res, (end) => {
    ctx.end();
    if (end.kind === "resume") resume(end.table);
    else if (end.kind === "expired") {
      refuse(`service ${route.name} has no replicas (none registered within ${route.holdTimeoutMs! / 1000} s)`);
    }
  });
  if (outcome === "held" && route.metrics) route.metrics.held++;
  if (outcome === "full") {
    ctx.end();
    holds.signal(route.name);
    refuse(`service ${route.name} has no replicas and too many requests wait for one`);
  }
}

/** 301 to the HTTPS origin; a request body is not read, so its connection closes. */
function redirect(res: ServerResponse, location: string, close: boolean): void {
  const body = `moved to ${location}\n`;
  const headers = ["location", location, "content-type", "text/plain; charset=utf-8"];
  headers.push("content-length", String(Buffer.byteLength(body)));
  const requestId = taggedRequestId(res);
  if (requestId !== undefined) headers.push("x-request-id", requestId);
  if (close) {
    headers.push("connection", "close");
    res.shouldKeepAlive = false;
  }
  res.writeHead(301, headers);
  res.end(body);
}

function replyRawRedirect(socket: Duplex, location: string): void {
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 301 Moved Permanently\r\nlocation: ${location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
  );
}
