/**
 * @module
 * One PD attempt on the wire (`pd-exchange.ts`): the body sent to a prefill and a decode replica at
 * once, each leg with its own abort so the first side to fail (an error status or a transport
 * failure) cancels the other and is the one blamed (SMG waits for both heads; a prefill error would
 * otherwise wait out decode's KV timeout); and the failure reply the client gets, as SMG gives it.
 */
import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import type { ReplicaState } from "../balancer.ts";
import type { ProxyContext } from "../context.ts";
import type { RequestHead } from "../headers.ts";
import { replyJson } from "../replies.ts";
import type { ServiceRoute } from "../routes.ts";
import type { PdSide } from "./pd-side.ts";

export interface Leg {
  replica: ReplicaState;
  response: Dispatcher.ResponseData | null;
  error: Error | null;
  /**
   * Prefill's 2xx answer, read to its end and dropped as soon as its head came (not after decode's:
   * a non-streamed decode sends its head only when it finished): null, or the error that cut it.
   */
  read: Promise<Error | null> | null;
}

export interface LastFailure {
  status: number;
  body: string;
  side: PdSide;
  /** Another pair may be tried (a transport failure, or a status the retry policy retries). */
  retry: boolean;
}

export interface BothLegs {
  /** Prefill's, then decode's. */
  legs: [Leg, Leg];
  /** The side that failed first, when both heads came (null: both are 2xx, prefill's answer may still fail). */
  first: PdSide | null;
  /** Cancels a side's leg. */
  cancel(side: PdSide): void;
  /** The attempt is over: stop following the exchange's abort. */
  done(): void;
}

/**
 * Sends `body` to both replicas; `signal` (the client left) cancels both legs. `prefillRead` is
 * called when prefill's 2xx answer was read to its end (its side's work is over).
 */
export async function sendBoth(
  ctx: ProxyContext,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  body: Buffer,
  prefill: ReplicaState,
  decode: ReplicaState,
  signal: AbortSignal,
  prefillRead: () => void,
): Promise<BothLegs> {
  const aborts = { prefill: new AbortController(), decode: new AbortController() };
  const onGone = () => {
    aborts.prefill.abort();
    aborts.decode.abort();
  };
  signal.addEventListener("abort", onGone);
  let first: PdSide | null = null;
  const blame = (side: PdSide) => {
    if (first !== null) return;
    first = side;
    aborts[side === "prefill" ? "decode" : "prefill"].abort();
  };
  const send = async (side: PdSide, replica: ReplicaState): Promise<Leg> => {
    try {
      const response = await ctx.pools.get(replica.origin).request({
        path: replica.pathPrefix + path,
        method: "POST",
        headers: legHeaders(head, replica, body.length),
        body,
        headersTimeout: route.readTimeoutMs,
        bodyTimeout: route.readTimeoutMs,
        signal: aborts[side].signal,
        servername: replica.servername,
      } as Dispatcher.RequestOptions);
      if (response.statusCode < 200 || response.statusCode >= 300) {
        blame(side);
        return { replica, response, error: null, read: null };
      }
      const read =
        side === "prefill"
          ? response.body.dump({ limit: Number.MAX_SAFE_INTEGER }).then(
              () => {
                prefillRead();
                return null;
              },
              (error: unknown) => {
                blame("prefill");
                return error as Error;
              },
            )
          : null;
      return { replica, response, error: null, read };
    } catch (error) {
      // Cancelled because the other side failed first: that side is the one to blame.
      blame(side);
      return { replica, response: null, error: error as Error, read: null };
    }
  };
  const legs = await Promise.all([send("prefill", prefill), send("decode", decode)]);
  return {
    legs,
    first: first as PdSide | null,
    cancel: (side) => aborts[side].abort(),
    done: () => signal.removeEventListener("abort", onGone),
  };
}

/** Reads a leg's answer to its end and drops it (prefill's is being read already). */
export async function dropLeg(leg: Leg): Promise<void> {
  if (leg.read) await leg.read;
  else await leg.response?.body.dump().catch(() => {});
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

/** undici's response headers as the flat name/value list `relayHead` reads. */
export function rawHeaders(headers: Dispatcher.ResponseData["headers"]): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
}

/** The last failure, as SMG returns it: decode's SSE error event for a stream, else the status and body. */
export function replyError(res: ServerResponse, last: LastFailure, stream: boolean, cors: boolean): void {
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
