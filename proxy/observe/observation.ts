/**
 * @module
 * What the proxy learns about one request while it runs, and the `ExchangeRecord` made of it once
 * its response is over. The observation rides on the response (a symbol property, so no function
 * signature changes along the way): the server starts one per request when some sink listens
 * (`observe`), the routing and dispatch code fill in the service and the rate-limit verdict, the
 * forwarding path the replica, retries, bytes and the meters (`sse-meter.ts`, `json-usage.ts`). One
 * shared `close` listener per response makes the record and hands it to every sink — for forwarded
 * requests and for the ones the gateway answered itself alike. The request id and trace context come
 * from the request's head, tagged on the response (`ids.ts`). This is the one producer of records:
 * the metrics registry, the access log and the span exporter all read the same one. With no sink
 * (metrics off and no access log or tracing) nothing is made at all.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { normalizeHost } from "../headers.ts";
import type { ExchangeRecord, ExchangeSink } from "./exchange-record.ts";
import { taggedIdentity } from "./ids.ts";
import type { JsonUsage } from "./json-usage.ts";
import type { SseMeter } from "./sse-meter.ts";

/** The part of a service's route a record names. */
export interface ObservedService {
  readonly name: string;
  readonly project: string;
  readonly model: { readonly name: string } | null;
}

const OBSERVATION = Symbol("observation");
type Observed = ServerResponse & { [OBSERVATION]?: Observation };
const NO_GAPS: readonly number[] = Object.freeze([]);

export class Observation {
  /** Milliseconds since the epoch at arrival. */
  readonly time: number;
  /** `performance.now()` at arrival. */
  readonly startedAt: number;
  readonly #req: IncomingMessage;
  readonly #host: string | undefined;
  readonly #address: string;
  readonly #sinks: readonly ExchangeSink[];
  route: ObservedService | null = null;
  rateLimit: "allowed" | "refused" | null = null;
  /** The replica that answered (its id). */
  replica: string | null = null;
  /** PD requests: the prefill replica of the pair (`pd/`), and when its answer ended (`performance.now()`, -1: it did not). */
  prefillReplica: string | null = null;
  prefillAt = -1;
  retries = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** `performance.now()` of the first body byte relayed, -1 before it. */
  firstByteAt = -1;
  sse: SseMeter | null = null;
  /** The answer is an event stream the proxy does not read (compressed): no first token to time. */
  unreadStream = false;
  json: JsonUsage | null = null;
  /** The forwarding exchange, told first when the response closes (it may be the client leaving). */
  exchange: { clientClosed(): void } | null = null;
  #done = false;

  constructor(
    req: IncomingMessage,
    host: string | undefined,
    address: string,
    startedAt: number,
    sinks: readonly ExchangeSink[],
  ) {
    this.#req = req;
    this.#host = host;
    this.#address = address;
    this.startedAt = startedAt;
    this.time = performance.timeOrigin + startedAt;
    this.#sinks = sinks;
  }

  /** The response is over (ended or cut): the record goes to every sink, once. */
  finish(res: ServerResponse, now = performance.now()): ExchangeRecord | null {
    if (this.#done) return null;
    this.#done = true;
    const record = this.record(res, now);
    for (const sink of this.#sinks) {
      try {
        sink(record);
      } catch {
        // A sink must not throw; one that does loses this record, the others still get it.
      }
    }
    return record;
  }

  /** The record as it stands at `now`. */
  record(res: ServerResponse, now: number): ExchangeRecord {
    const start = this.startedAt;
    const duration = Math.max(0, now - start) / 1000;
    let ttft: number | null = null;
    let tpot: number | null = null;
    let itl = NO_GAPS;
    let inputTokens: number | null = null;
    let outputTokens: number | null = null;
    let tokensEstimated = false;
    const sse = this.sse;
    if (sse) {
      if (sse.firstContentAt >= 0) ttft = Math.max(0, sse.firstContentAt - start) / 1000;
      itl = sse.gaps;
      inputTokens = sse.inputTokens;
      outputTokens = sse.outputTokens;
      if (outputTokens === null && sse.contentEvents > 0) {
        outputTokens = sse.contentEvents;
        tokensEstimated = true;
      }
      if (ttft !== null && outputTokens !== null && outputTokens > 1) tpot = (duration - ttft) / (outputTokens - 1);
    } else {
      if (this.firstByteAt >= 0 && !this.unreadStream) ttft = Math.max(0, this.firstByteAt - start) / 1000;
      const json = this.json;
      if (json) {
        json.end();
        inputTokens = json.inputTokens;
        outputTokens = json.outputTokens;
      }
    }
    const route = this.route;
    // The request's head, tagged on the response as it was read (`server.ts`; a held request routed
    // again keeps its first): its id and trace context, for forwarded requests and the gateway's
    // own replies alike. None only for an ACME challenge, answered before the head is read.
    const identity = taggedIdentity(res);
    return {
      time: this.time,
      requestId: identity?.requestId ?? "",
      method: this.#req.method ?? "",
      host: normalizeHost(this.#host ?? ""),
      path: pathOf(this.#req.url ?? ""),
      clientAddress: this.#address,
      service: route?.name ?? null,
      project: route?.project ?? null,
      model: route?.model?.name ?? null,
      replica: this.replica,
      ...(this.prefillReplica !== null ? { prefillReplica: this.prefillReplica } : {}),
      ...(this.prefillAt >= 0 ? { prefillTime: Math.max(0, this.prefillAt - start) / 1000 } : {}),
      status: res.headersSent ? res.statusCode : 0,
      retries: this.retries,
      rateLimit: this.rateLimit,
      duration,
      ttft,
      tpot,
      itl,
      inputTokens,
      outputTokens,
      tokensEstimated,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      incomplete: !res.writableFinished,
      trace: identity?.trace ?? null,
    };
  }
}

/** The request target's path without its query (an absolute-form target's path too). */
export function pathOf(url: string): string {
  let path = url;
  if (!path.startsWith("/")) {
    try {
      path = new URL(path).pathname;
    } catch {
      return "";
    }
  }
  const q = path.indexOf("?");
  return q === -1 ? path : path.slice(0, q);
}

function onClose(this: Observed): void {
  const observed = this[OBSERVATION];
  if (!observed) return;
  observed.exchange?.clientClosed();
  observed.finish(this);
}

/**
 * Starts observing a request, when some sink listens. A request held for a service scaled to zero
 * and routed again keeps its first observation (its arrival time).
 */
export function observe(
  sinks: readonly ExchangeSink[],
  req: IncomingMessage,
  res: ServerResponse,
  host: string | undefined,
  address: string,
  startedAt: number,
): void {
  if (sinks.length === 0) return;
  const observed = res as Observed;
  if (observed[OBSERVATION]) return;
  observed[OBSERVATION] = new Observation(req, host, address, startedAt, sinks);
  res.on("close", onClose);
}

/** The request's observation, when it is observed. */
export function observation(res: ServerResponse): Observation | undefined {
  return (res as Observed)[OBSERVATION];
}
