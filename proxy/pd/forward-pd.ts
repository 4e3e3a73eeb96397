/**
 * @module
 * One request through the built-in PD routing (docs/pd.md), as SMG's HTTP PD router does it
 * (`pd_router.rs` `execute_dual_dispatch`): read the JSON body; pick a prefill replica with the
 * prefill policy (on the request's text) and a decode replica with the decode policy; inject the
 * prefill's bootstrap address and fresh rooms into the body (`bootstrap.ts`); POST it to both at
 * once; when both heads are 2xx, read prefill's answer to its end and drop it, and only then relay
 * decode's answer (streamed as it comes). The first side to fail cancels the other (SMG waits for
 * both heads; a prefill error would otherwise wait out decode's KV timeout) and is the one blamed.
 * Nothing reaches the client before both sides succeeded, so a failure on either side — a transport error, a status the service's retry policy
 * retries (SMG: 408/429/500/502/503/504), a prefill error — tries a new pair, up to the policy's
 * attempts, avoiding the replicas that failed; then the client gets the failing side's error
 * (decode's as a single SSE error event when it asked for a stream, as SMG). Each side's in-flight
 * count is held on its replica while the attempt runs (the policies' loads, per role); failures
 * count for the replica's health and in `pd.counts`.
 *
 * Kept apart from `forward.ts`'s `Exchange` (one replica per attempt): this path always buffers
 * the body and waits for both heads, which undici's `request` API expresses plainly.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { errorCode, failureKind } from "../attempt-failure.ts";
import type { ReplicaState } from "../balancer.ts";
import type { ProxyContext } from "../context.ts";
import type { RequestHead } from "../headers.ts";
import { routingTextOf } from "../policies/routing-text.ts";
import { bodyTimedOut, readBody } from "../read-body.ts";
import { replyJson } from "../replies.ts";
import type { ServiceRoute } from "../routes.ts";
import { withBootstrap } from "./bootstrap.ts";
import type { PdRoute } from "./pd-route.ts";

/** Response headers relayed from the decode worker (the rest are hop-by-hop or the proxy's own). */
const RELAYED = ["content-type", "cache-control"];

type Leg = { replica: ReplicaState; response: Dispatcher.ResponseData | null; error: Error | null };
type Side = "prefill" | "decode";

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
    (body) => forwardPdBody(ctx, res, route, head, path, startedAt, body),
    tooLarge,
  );
}

/** Serves a PD request whose body was read already (here, or by the OpenAI entrypoint). */
export function forwardPdBody(
  ctx: ProxyContext,
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
  ctx.begin();
  void exchange(ctx, res, route, pd, head, path, body, parsed as Record<string, unknown>, text)
    .catch((error: unknown) => {
      ctx.log(`pd: service ${route.name}: ${(error as Error).message}`);
      if (!res.headersSent) replyJson(res, 502, "PD exchange failed", { cors });
      else res.destroy();
    })
    .finally(() => {
      route.counter.record((performance.now() - startedAt) / 1000, Date.now());
      ctx.end();
    });
}

/** Headers for one leg: the client's end-to-end ones with the replica's Host and the new length. */
function legHeaders(head: RequestHead, replica: ReplicaState, length: number): string[] {
  const out: string[] = [];
  const list = head.forward;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (name === "content-length" || name === "transfer-encoding") continue;
    out.push(name, i === 0 ? (replica.https || head.host === undefined ? replica.authority : head.host) : list[i + 1]!);
  }
  out.push("content-length", String(length));
  return out;
}

async function exchange(
  ctx: ProxyContext,
  res: ServerResponse,
  route: ServiceRoute,
  pd: PdRoute,
  head: RequestHead,
  path: string,
  raw: Buffer,
  body: Record<string, unknown>,
  text: string,
): Promise<void> {
  const cors = route.model !== null;
  const retry = route.resilience.policy;
  const stream = body.stream === true;
  const abort = new AbortController();
  const gone = () => abort.abort();
  res.once("close", gone);
  const triedPrefill: ReplicaState[] = [];
  const triedDecode: ReplicaState[] = [];
  pd.counts.requests++;
  let last: { status: number; body: string; side: "prefill" | "decode" } | null = null;
  try {
    for (let attempt = 1; attempt <= retry.attempts; attempt++) {
      if (abort.signal.aborted) return;
      const now = Date.now();
      // A retry avoids the replicas that failed; once a side tried them all it picks among all
      // again (SMG re-picks the whole pair every time).
      const prefill = pd.prefill.pick(now, triedPrefill, text) ?? pd.prefill.pick(now, null, text);
      const decode = pd.decode.pick(now, triedDecode, "") ?? pd.decode.pick(now, null, "");
      if (!prefill || !decode) break;
      if (attempt > 1) {
        pd.counts.retries++;
        if (route.metrics) route.metrics.retries++;
      }
      const sent = withBootstrap(raw, body, path, {
        host: prefill.hostname,
        port: pd.bootstrapPorts.get(prefill.id) ?? null,
      });
      // Each leg has its own abort: the first side to fail cancels the other (a prefill error
      // need not wait for decode to give up on its KV, nor the reverse).
      const aborts = { prefill: new AbortController(), decode: new AbortController() };
      const onGone = () => {
        aborts.prefill.abort();
        aborts.decode.abort();
      };
      abort.signal.addEventListener("abort", onGone);
      prefill.inFlight++;
      decode.inFlight++;
      const released = { prefill: false, decode: false };
      const release = (side: Side) => {
        if (released[side]) return;
        released[side] = true;
        (side === "prefill" ? prefill : decode).inFlight--;
      };
      let first: Side | null = null;
      const send = async (side: Side, replica: ReplicaState): Promise<Leg> => {
        const other = side === "prefill" ? "decode" : "prefill";
        try {
          const response = await ctx.pools.get(replica.origin).request({
            path: replica.pathPrefix + path,
            method: "POST",
            headers: legHeaders(head, replica, sent.length),
            body: sent,
            headersTimeout: route.readTimeoutMs,
            bodyTimeout: route.readTimeoutMs,
            signal: aborts[side].signal,
            servername: replica.servername,
          } as Dispatcher.RequestOptions);
          if ((response.statusCode < 200 || response.statusCode >= 300) && first === null) {
            first = side;
            aborts[other].abort();
          }
          return { replica, response, error: null };
        } catch (error) {
          // Cancelled because the other side failed first: that side is the one to blame.
          if (first === null) {
            first = side;
            aborts[other].abort();
          }
          return { replica, response: null, error: error as Error };
        }
      };
      try {
        const legs = await Promise.all([send("prefill", prefill), send("decode", decode)]);
        if (abort.signal.aborted) {
          for (const leg of legs) await leg.response?.body.dump().catch(() => {});
          return;
        }
        const [p, d] = legs;
        if (first !== null) {
          // The side that failed first is the one to blame (the other was cancelled for it).
          const side: Side = first;
          const leg = side === "prefill" ? p : d;
          const status = leg.response?.statusCode ?? 502;
          const error = leg.response ? await leg.response.body.text().catch(() => "") : leg.error!.message;
          for (const other of legs) if (other !== leg) await other.response?.body.dump().catch(() => {});
          failed(pd, side, leg.replica, leg.response ? `status ${status}` : error);
          if (!leg.response) {
            const code = errorCode(leg.error!);
            route.metrics?.upstreamError(leg.replica.id, failureKind(code, code !== "ECONNREFUSED"));
          }
          last = { status, body: leg.response ? error : `${side} replica ${leg.replica.id} failed: ${error}`, side };
          if (leg.response && !retry.retriesStatus(status)) break;
          (side === "prefill" ? triedPrefill : triedDecode).push(leg.replica);
          continue;
        }
        // Both answered 2xx: prefill's answer is read to its end and dropped, then decode's relayed.
        try {
          await p.response!.body.dump({ limit: Number.MAX_SAFE_INTEGER });
        } catch (error) {
          aborts.decode.abort();
          await d.response!.body.dump().catch(() => {});
          failed(pd, "prefill", prefill, (error as Error).message);
          last = {
            status: 502,
            body: `prefill replica ${prefill.id} failed: ${(error as Error).message}`,
            side: "prefill",
          };
          triedPrefill.push(prefill);
          continue;
        }
        release("prefill");
        pd.prefill.succeeded(prefill);
        await relay(res, head, d.response!, cors);
        pd.decode.succeeded(decode);
        return;
      } finally {
        abort.signal.removeEventListener("abort", onGone);
        release("prefill");
        release("decode");
      }
    }
    if (res.headersSent || res.destroyed) return;
    if (!last) {
      replyJson(res, 503, `service ${route.name} has no prefill or decode replica left to try`, { cors });
      return;
    }
    replyError(res, last, stream, cors);
  } finally {
    res.off("close", gone);
  }
}

function failed(pd: PdRoute, side: "prefill" | "decode", replica: ReplicaState, reason: string): void {
  if (side === "prefill") pd.counts.prefillFailures++;
  else pd.counts.decodeFailures++;
  (side === "prefill" ? pd.prefill : pd.decode).failed(replica, Date.now(), `${side}: ${reason}`);
}

/** Decode's answer to the client: its status and type, the body as it streams. */
async function relay(res: ServerResponse, head: RequestHead, response: Dispatcher.ResponseData, cors: boolean) {
  const headers: Record<string, string> = { "x-request-id": head.requestId };
  for (const name of RELAYED) {
    const value = response.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  if (cors) headers["access-control-allow-origin"] = "*";
  res.writeHead(response.statusCode, headers);
  if (typeof res.flushHeaders === "function") res.flushHeaders();
  try {
    for await (const chunk of response.body) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
    res.end();
  } catch {
    // Cut mid-answer: the client sees the connection end (its bytes cannot be taken back).
    res.destroy();
  }
}

/** The last failure, as SMG returns it: decode's SSE error event for a stream, else the status and body. */
function replyError(
  res: ServerResponse,
  last: { status: number; body: string; side: "prefill" | "decode" },
  stream: boolean,
  cors: boolean,
): void {
  const message = last.body.trim() || `${last.side} worker answered ${last.status}`;
  if (stream && last.side === "decode") {
    const event = `data: ${JSON.stringify({ error: { message, status: last.status } })}\n\n`;
    const headers: Record<string, string> = { "content-type": "text/event-stream" };
    if (cors) headers["access-control-allow-origin"] = "*";
    res.writeHead(last.status, headers);
    res.end(event);
    return;
  }
  replyJson(res, last.status, `${last.side}: ${message}`, { cors });
}
