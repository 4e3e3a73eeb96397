/**
 * @module
 * The OpenAI-compatible entrypoint on `gateway.<domain>`: `GET /v1/models` lists every service with a
 * `model`; `POST /v1/chat/completions` and `POST /v1/completions` are read whole (to learn the
 * `model`), then forwarded with the same bytes to one replica of the service serving that model, at
 * `<model.prefix>/chat/completions` (resp. `/completions`), through the ordinary forwarding path:
 * balancer, pools, retries, timeouts, streaming and the service's stats are those of direct traffic.
 * Errors the entrypoint makes itself use OpenAI's error body; every answer carries CORS headers.
 * The service's rate limits apply to the path it receives (`<model.prefix>/chat/completions`).
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { type AuthDenial, admit, authDenial } from "./auth.ts";
import type { ProxyContext } from "./context.ts";
import { replyPreflight } from "./cors.ts";
import { forward } from "./forward.ts";
import { clientAddress, type RequestHead } from "./headers.ts";
import { observation } from "./observe/observation.ts";
import { forwardPdBody } from "./pd/forward-pd.ts";
import { isPdRequest } from "./pd/pd-route.ts";
import { routingText } from "./policies/routing-text.ts";
import { checkRateLimit, replyRateLimited, setHeaders } from "./rate-limit.ts";
import { bodyTimedOut, readBody } from "./read-body.ts";
import { replyJson, send } from "./replies.ts";
import type { RoutingTable, ServiceRoute } from "./routes.ts";

/** Body limit until the model (hence the service's `client_max_body_size`) is known. */
export const UNKNOWN_MODEL_BODY_LIMIT = 1024 * 1024;

/** How much of a large body is searched for the `model` before giving up (413). */
const MODEL_SNIFF_WINDOW = UNKNOWN_MODEL_BODY_LIMIT;

const FORWARDED = new Map([
  ["/v1/chat/completions", "/chat/completions"],
  ["/v1/completions", "/completions"],
]);

export interface EntrypointOptions {
  expectsContinue: boolean;
  retryAfterSeconds: number;
  /** Parks the request for a service scaled to zero; `resume` routes it again under a new table. */
  hold: (route: ServiceRoute, unread: boolean, resume: (table: RoutingTable) => void) => void;
}

interface OpenAIError {
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
}

function replyError(
  ctx: ProxyContext,
  res: ServerResponse,
  status: number,
  error: OpenAIError,
  close = false,
  extra: string[] = [],
): void {
  const body = `${JSON.stringify({ error: { param: null, code: null, ...error } })}\n`;
  if (extra.length > 0) {
    // Headers beyond what `send` writes (Allow on 405).
    for (let i = 0; i < extra.length; i += 2) res.setHeader(extra[i]!, extra[i + 1]!);
  }
  send(res, status, "application/json", body, { close: close || ctx.closing, cors: true });
}

/** OpenAI clients read `error.message`: the same refusal as on the service's own host, in their shape. */
function replyDenied(ctx: ProxyContext, res: ServerResponse, denied: AuthDenial, close = false) {
  const type = denied.status === 401 ? "authentication_error" : "permission_error";
  const extra = denied.challenge ? ["www-authenticate", 'Bearer realm="gateplane"'] : [];
  replyError(ctx, res, denied.status, { message: denied.message, type }, close, extra);
}

function replyModels(
  ctx: ProxyContext,
  res: ServerResponse,
  table: RoutingTable,
  id: string | null,
  close: boolean,
  authorization: string | undefined,
): void {
  // Listing needs what using needs: a member's token when any listed service has auth.
  const guarded = id === null ? [...table.byModel.values()] : [table.byModel.get(id)].filter((r) => r !== undefined);
  for (const route of guarded) {
    const denied = authDenial(route, table, authorization);
    if (denied) {
      replyDenied(ctx, res, denied, close);
      return;
    }
  }
  const model = (name: string, route: ServiceRoute) => ({
    id: name,
    object: "model",
    created: table.createdAt,
    owned_by: route.project,
  });
  let body: unknown;
  if (id === null) {
    body = { object: "list", data: [...table.byModel].map(([name, route]) => model(name, route)) };
  } else {
    const route = table.byModel.get(id);
    if (!route) {
      replyError(ctx, res, 404, modelNotFound(id), close);
      return;
    }
    body = model(id, route);
  }
  send(res, 200, "application/json", `${JSON.stringify(body)}\n`, { close: close || ctx.closing, cors: true });
}

const modelNotFound = (model: string): OpenAIError => ({
  message: `The model '${model}' does not exist`,
  type: "invalid_request_error",
  param: "model",
  code: "model_not_found",
});

const tooLarge = (limit: number): OpenAIError => ({
  message: `request body larger than client_max_body_size (${limit} bytes)`,
  type: "invalid_request_error",
});

/** The top-level `"model": "<name>"` of a JSON text's beginning, if it can be read off without parsing the whole. */
function sniffModel(prefix: string): string | null {
  const match = /"model"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(prefix);
  if (!match) return null;
  try {
    return JSON.parse(match[1]!) as string;
  } catch {
    return null;
  }
}

/** Serves one request on the entrypoint host. `path` is the request target (query included). */
export function serveEntrypoint(
  ctx: ProxyContext,
  table: RoutingTable,
  req: IncomingMessage,
  res: ServerResponse,
  head: RequestHead,
  path: string,
  startedAt: number,
  options: EntrypointOptions,
): void {
  const query = path.indexOf("?");
  const pathname = query === -1 ? path : path.slice(0, query);
  const search = query === -1 ? "" : path.slice(query);
  const method = req.method ?? "";
  // A body we do not read (the request is refused) may still be on its way: close after answering.
  const unread = options.expectsContinue || head.chunked || head.contentLength > 0;

  if (method === "OPTIONS") {
    replyPreflight(req, res, unread || ctx.closing);
    return;
  }
  if (pathname === "/v1/models" || pathname.startsWith("/v1/models/")) {
    if (method !== "GET") {
      replyError(ctx, res, 405, { message: `Method ${method} not allowed`, type: "invalid_request_error" }, unread, [
        "allow",
        "GET, OPTIONS",
      ]);
      return;
    }
    let id: string | null = null;
    if (pathname !== "/v1/models") {
      try {
        id = decodeURIComponent(pathname.slice("/v1/models/".length));
      } catch {
        id = pathname.slice("/v1/models/".length);
      }
    }
    replyModels(ctx, res, table, id, unread, req.headers.authorization);
    return;
  }
  const suffix = FORWARDED.get(pathname);
  if (suffix === undefined) {
    replyError(
      ctx,
      res,
      404,
      { message: `Invalid URL (${method} ${pathname})`, type: "invalid_request_error" },
      unread,
    );
    return;
  }
  if (method !== "POST") {
    replyError(ctx, res, 405, { message: `Method ${method} not allowed`, type: "invalid_request_error" }, unread, [
      "allow",
      "POST, OPTIONS",
    ]);
    return;
  }
  if (options.expectsContinue) res.writeContinue();
  // 1 MiB until the model is known (a larger body has its `model` read off its first MiB), then the
  // service's `client_max_body_size`; 413 beyond, connection closed.
  const bound = {
    limit: UNKNOWN_MODEL_BODY_LIMIT,
    raise: (received: Buffer) => {
      const name = sniffModel(received.subarray(0, MODEL_SNIFF_WINDOW).toString("utf8"));
      const route = name === null ? undefined : table.byModel.get(name);
      return route ? route.maxBodySize : UNKNOWN_MODEL_BODY_LIMIT;
    },
    timedOut: () => replyError(ctx, res, 408, { message: bodyTimedOut(ctx), type: "invalid_request_error" }, true),
  };
  const refuse = (limit: number) => replyError(ctx, res, 413, tooLarge(limit), true);
  readBody(
    ctx,
    req,
    res,
    bound,
    (body) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        replyError(ctx, res, 400, {
          message:
            "We could not parse the JSON body of your request. The request body must be a JSON object with a 'model' field.",
          type: "invalid_request_error",
        });
        return;
      }
      const model =
        typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
          ? (parsed as { model?: unknown }).model
          : undefined;
      if (typeof model !== "string" || model === "") {
        replyError(ctx, res, 400, {
          message: "you must provide a model parameter",
          type: "invalid_request_error",
          param: "model",
        });
        return;
      }
      // Routed again under a new table when the request was held for a service scaled to zero.
      const dispatch = (current: RoutingTable) => {
        const route = current.byModel.get(model);
        if (!route?.model) {
          replyError(ctx, res, 404, modelNotFound(model));
          return;
        }
        const observed = observation(res);
        if (observed) observed.route = route;
        const denied = admit(route, current, head, req.headers.authorization);
        if (denied) {
          replyDenied(ctx, res, denied);
          return;
        }
        if (route.maxBodySize > 0 && body.length > route.maxBodySize) {
          replyError(ctx, res, 413, tooLarge(route.maxBodySize));
          return;
        }
        if (route.balancer.replicas.length === 0) {
          // The body is already read, so nothing is left unread on the connection.
          if (route.holdTimeoutMs !== null) options.hold(route, false, dispatch);
          // As for direct traffic to the service.
          else
            replyJson(res, 503, `service ${route.name} has no replicas`, {
              close: ctx.closing,
              cors: true,
              retryAfterSeconds: options.retryAfterSeconds,
            });
          return;
        }
        const forwarded = `${route.model.prefix}${suffix}${search}`;
        const text = route.balancer.policy.needsText ? routingText(parsed) : "";
        checkRateLimit(ctx, {
          rules: route.rateLimits,
          path: forwarded,
          rawHeaders: req.rawHeaders,
          address: clientAddress(req.socket.remoteAddress),
          gone: () => res.destroyed,
          admit: (headers) => {
            if (observed && headers) observed.rateLimit = "allowed";
            setHeaders(res, headers);
            if (route.pd && isPdRequest(req.method, forwarded)) {
              forwardPdBody(ctx, req, res, route, head, forwarded, startedAt, body);
            } else forward(ctx, req, res, route, head, forwarded, startedAt, body, text);
          },
          refuse: (rule, verdict) => {
            if (observed) observed.rateLimit = "refused";
            replyRateLimited(res, rule, verdict, { openai: true, cors: true, close: ctx.closing });
          },
        });
      };
      dispatch(table);
    },
    refuse,
  );
}
