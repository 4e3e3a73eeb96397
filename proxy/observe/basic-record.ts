/**
 * @module
 * An interim producer of `ExchangeRecord`s, from what `server.ts` sees of a request: its head,
 * the routing decision, and its response once closed (status, whether it finished, duration).
 * It knows nothing of replicas, retries, rate limits, tokens, TTFT or bytes (null or 0 there).
 * The per-request measurement of the exchange itself (`forward.ts`, `dispatch.ts`) produces the
 * full record and replaces this module; the sinks read either the same way.
 *
 * Only requests that arrive while a sink is configured are watched: without one, nothing here
 * runs. One shared `close` listener, the state on the response (no closure per request).
 */
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { RequestHead } from "../headers.ts";
import type { Routed } from "../route-request.ts";
import { normalizeHost } from "../routes.ts";
import type { ExchangeRecord, ExchangeSink } from "./exchange-record.ts";

interface Watched {
  readonly sinks: readonly ExchangeSink[];
  readonly head: RequestHead;
  readonly method: string;
  readonly path: string;
  readonly address: string;
  readonly startedAt: number;
  readonly route: { name: string; project: string; model: { name: string } | null } | null;
}

const WATCHED = Symbol("watched");
type Tagged = ServerResponse & { [WATCHED]?: Watched };

/**
 * Emits one record to `sinks` (the process's list, as it is then) when `res` closes. A held request routed
 * again (`server.ts`) keeps its first watch: one record per request.
 */
export function watchExchange(
  sinks: readonly ExchangeSink[],
  res: ServerResponse,
  method: string,
  url: string,
  head: RequestHead,
  address: string,
  startedAt: number,
  routed: Routed,
): void {
  const tagged = res as Tagged;
  if (tagged[WATCHED]) return;
  const route = "route" in routed ? routed.route : "hold" in routed ? routed.hold : null;
  const target = "path" in routed ? routed.path : url;
  const query = target.indexOf("?");
  tagged[WATCHED] = {
    sinks,
    head,
    method,
    path: query === -1 ? target : target.slice(0, query),
    address,
    startedAt,
    route,
  };
  // `on`, not `once`: a response closes once, and `once` wraps the listener per call.
  res.on("close", onClose);
}

function onClose(this: Tagged): void {
  const w = this[WATCHED];
  if (!w) return;
  const sinks = w.sinks;
  if (sinks.length === 0) return;
  const duration = (performance.now() - w.startedAt) / 1000;
  const record: ExchangeRecord = {
    time: performance.timeOrigin + w.startedAt,
    requestId: w.head.requestId,
    method: w.method,
    host: normalizeHost(w.head.host ?? ""),
    path: w.path,
    clientAddress: w.address,
    service: w.route?.name ?? null,
    project: w.route?.project ?? null,
    model: w.route?.model?.name ?? null,
    replica: null,
    status: this.headersSent ? this.statusCode : 0,
    retries: 0,
    rateLimit: null,
    duration,
    ttft: null,
    tpot: null,
    itl: [],
    inputTokens: null,
    outputTokens: null,
    tokensEstimated: false,
    bytesIn: 0,
    bytesOut: 0,
    incomplete: !this.writableFinished,
    trace: w.head.trace,
  };
  for (const sink of sinks) {
    try {
      sink(record);
    } catch {
      // A sink must not throw; one that does loses this record, the others still get it.
    }
  }
}
