/**
 * @module
 * `GET /metrics` on the gateway's own address (its bare address and the entrypoint host, never a
 * service's host), when the document says `observability.metrics.public: true`: the same exposition
 * as the agent's loopback admin listener, for a Prometheus outside the host. It takes a service
 * token of the gateway's project (`Authorization: Bearer gps_…`, as `auth: true` services do; 401
 * without one, 403 for anything else); the token is consumed here and goes nowhere.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ProxyContext } from "../context.ts";
import { replyJson, send } from "../replies.ts";
import type { RoutingTable } from "../routes.ts";
import { EXPOSITION_CONTENT_TYPE } from "./exposition.ts";

export function servePublicMetrics(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  table: RoutingTable,
  unread: boolean,
  exposition: () => Promise<string>,
): void {
  const close = unread || ctx.closing;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    replyJson(res, 405, `method ${req.method} not allowed`, { close });
    return;
  }
  const verdict = table.tokens.check(req.headers.authorization);
  if (verdict === "missing") {
    replyJson(res, 401, "the gateway's metrics need a service token (gps_…) of its project", {
      close,
      challenge: true,
    });
    return;
  }
  if (verdict !== "ok") {
    const message =
      verdict === "api_token"
        ? "an API token (gpt_…) does not open the gateway's metrics: use a service token (gps_…) of its project"
        : "this token does not open the gateway's metrics: it takes a valid service token (gps_…) of its project";
    replyJson(res, 403, message, { close });
    return;
  }
  // Counted as running, so a closing server answers before it stops.
  ctx.begin();
  exposition().then(
    (text) => {
      ctx.end();
      if (!res.destroyed) send(res, 200, EXPOSITION_CONTENT_TYPE, text, { close: close || ctx.closing });
    },
    (err: Error) => {
      ctx.end();
      if (!res.destroyed) replyJson(res, 503, `metrics unavailable: ${err.message}`, { close: close || ctx.closing });
    },
  );
}
