/**
 * @module
 * One HTTP exchange: client request → replica → client response, streamed both ways with
 * backpressure through undici's `dispatch` (no intermediate streams or `fetch` objects). The
 * service's admission gate gives it a slot first, or a place in its queue (`admission/`). An attempt
 * that fails before any byte went to the client (never reached, reset, timed out, a retried status)
 * is tried again on another replica when the service's retry policy, its budget and the body allow
 * (`admission/retry-policy.ts`, decided in `attempt-failure.ts`); a retried status's response is read
 * and dropped. The body sent, the response's head relayed and its meters are prepared in `exchange-io.ts`. Everything that
 * reached a replica is counted in the service's stats. When the request is observed (`observe/observation.ts`),
 * the exchange tells its observation what happened and meters the response as it passes: LLM event
 * streams (`observe/sse-meter.ts`) and JSON answers' token counts (`observe/json-usage.ts`).
 *
 * The handler uses undici's raw-header callbacks (`onConnect`/`onHeaders`/`onData`/…): they are what
 * undici 7's client calls natively, while the newer controller API adds a wrapper and parses every
 * response's headers into an object per request.
 *
 * Why one file past ~400 lines: it holds one thing, the `Exchange`, a single object per request that
 * is at once undici's dispatch handler, the routing decision's client and the admission gate's
 * ticket. Its state (the slot and the replica held, the lease, the attempts, whether a byte reached
 * the client, whether the client left) is read and written by every one of those callbacks, in an
 * order that matters; splitting the class by callback would either expose that state or add an object
 * per request on the hot path (this file avoids even a closure per request). What stands apart from
 * that state is moved out: an attempt's failure and the retry decision (`attempt-failure.ts`), the
 * body sent, the response head relayed, the meters and the response's end (`exchange-io.ts`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { AdmissionSeat, type SeatHolder } from "./admission/admission-seat.ts";
import { replyRefused } from "./admission/refusal.ts";
import type { Failure } from "./admission/retry-policy.ts";
import {
  attemptFailure,
  BadResponseError,
  ClientGoneError,
  errorCode,
  failureKind,
  failureReply,
  NOT_A_REPLICA_FAULT,
  retryDelayFor,
} from "./attempt-failure.ts";
import type { ReplicaState } from "./balancer.ts";
import type { ProxyContext } from "./context.ts";
import { BodyTooLargeError } from "./errors.ts";
import { endResponse, relayHead, requestBody } from "./exchange-io.ts";
import { type RequestHead, setUpstreamHost } from "./headers.ts";
import { type Observation, observation } from "./observe/observation.ts";
import type { ServiceMeter } from "./observe/service-meter.ts";
import type { SseMeter } from "./observe/sse-meter.ts";
import type { DoneScanner } from "./policies/load.ts";
import { replyJson } from "./replies.ts";
import type { ServiceRoute } from "./routes.ts";
import type { RoutingClient } from "./routing-gate.ts";

// The response carries its exchange so one shared listener serves every request: a per-request
// closure costs an allocation (and, under tsx's keepNames, a defineProperty) on the hot path.
const EXCHANGE = Symbol("exchange");
type Tagged = ServerResponse & { [EXCHANGE]?: Exchange };
function onClientClose(this: Tagged): void {
  this[EXCHANGE]?.clientClosed();
}

function onBackoff(exchange: Exchange): void {
  exchange.backedOff();
}

/**
 * Forwards `req` to one of `route`'s replicas and streams the answer into `res`. `body`, when given,
 * is the request body already read from `req` (the entrypoint reads it to find the model,
 * cache_aware services to find the routing `text`, `body-buffer.ts` before dialling), or, for a
 * body past the buffering bound, what was read followed by the rest.
 */
export function forward(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  route: ServiceRoute,
  head: RequestHead,
  path: string,
  startedAt: number,
  body: Buffer | Readable | null = null,
  text = "",
): void {
  new Exchange(ctx, req, res, route, head, path, startedAt, body, text).start();
}

class Exchange implements Dispatcher.DispatchHandler, RoutingClient, SeatHolder {
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #route: ServiceRoute;
  readonly #head: RequestHead;
  readonly #path: string;
  readonly #startedAt: number;
  readonly #readBody: Buffer | Readable | null;
  readonly #text: string;
  #body: Readable | Buffer | null = null;
  #replica: ReplicaState | null = null;
  /** The replica whose in-flight count this exchange holds (released once, `policies/load.ts`). */
  #held: ReplicaState | null = null;
  /** The host routing state's lease on the same load (0: none; `routing-gate.ts`). */
  #lease = 0;
  /** Looks for `data: [DONE]` in an event stream, which releases the load before the stream ends. */
  #scanner: DoneScanner | null = null;
  /** Measures an event stream (and finds `data: [DONE]`) when the request is observed or usage withheld. */
  #meter: SseMeter | null = null;
  /** The gateway asked for the stream's usage (`usage: include`): the usage-only event is withheld. */
  #withhold = false;
  #observed: Observation | undefined;
  #metrics: ServiceMeter | null;
  #tried: ReplicaState[] | null = null;
  /** Attempts made (the one running included). */
  #attempts = 0;
  /** The current attempt's response is being read and dropped: a retry follows its end. */
  #discard = false;
  /** The delay before that retry (ms). */
  #retryDelay = 0;
  /** The back-off timer before the next attempt. */
  #backoff: NodeJS.Timeout | null = null;
  /** Its slot or place at the service's admission gate, and the counts that follow them. */
  readonly #seat: AdmissionSeat;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  /** The current attempt was written to a replica connection. */
  #sent = false;
  /** Some attempt reached a replica: the request counts in the stats. */
  #reached = false;
  #responded = false;
  /** The replica's final status (0 before its head): a success counts for its health once the body ended. */
  #status = 0;
  #clientGone = false;
  #done = false;

  constructor(
    ctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    route: ServiceRoute,
    head: RequestHead,
    path: string,
    startedAt: number,
    readBody: Buffer | Readable | null,
    text: string,
  ) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#route = route;
    this.#head = head;
    this.#path = path;
    this.#startedAt = startedAt;
    this.#readBody = readBody;
    this.#text = text;
    this.#metrics = route.metrics;
    this.#seat = new AdmissionSeat(this, route, route.metrics);
  }

  start(): void {
    this.#ctx.begin();
    const head = this.#head;
    const observed = observation(this.#res);
    this.#observed = observed;
    if (observed) {
      observed.route = this.#route;
      // The observation's own `close` listener tells the exchange first: one listener, not two.
      observed.exchange = this;
    } else {
      (this.#res as Tagged)[EXCHANGE] = this;
      this.#res.on("close", onClientClose);
    }
    const prepared = requestBody(this.#req, this.#route, head, this.#path, this.#readBody, observed);
    this.#body = prepared.body;
    this.#withhold = prepared.withhold;
    const resilience = this.#route.resilience;
    resilience.budget.request(this.#startedAt);
    this.#seat.ask(this.#req.headers);
  }

  /** Admitted (`SeatHolder`): the first attempt. */
  go(): void {
    this.#attempt();
  }

  /** The client left (`SeatHolder`). */
  get gone(): boolean {
    return this.#clientGone;
  }

  /** Admitted after the client left (`SeatHolder`). */
  end(): void {
    this.#finish();
  }

  /** Refused at admission (`SeatHolder`). */
  refuse(refusal: "full" | "timeout"): void {
    if (!this.#clientGone) {
      // A body still streaming from the client cannot be told from a next request: close after it.
      const unread = this.#body !== null && !Buffer.isBuffer(this.#body);
      const route = this.#route;
      replyRefused(
        this.#res,
        refusal,
        route.name,
        route.model !== null,
        route.resilience.retryAfterSeconds,
        unread || this.#ctx.closing,
      );
    }
    this.#finish();
  }

  #attempt(): void {
    // The decision may take a round trip to the parent process: `routed` continues.
    this.#ctx.routing.pick(this.#route, this.#tried, this.#text, this);
  }

  routed(replica: ReplicaState | undefined, lease: number): void {
    if (this.#clientGone || this.#done) {
      // The client left while the decision was on its way.
      if (lease !== 0) this.#ctx.routing.release(lease);
      this.#finish();
      return;
    }
    if (!replica) {
      this.#fail(502, "no replica of this service could be reached");
      return;
    }
    this.#replica = replica;
    this.#sent = false;
    this.#attempts++;
    if (this.#observed) this.#observed.retries = this.#attempts - 1;
    this.#held = replica;
    this.#lease = lease;
    replica.inFlight++;
    setUpstreamHost(this.#head, replica.https || this.#head.host === undefined ? replica.authority : this.#head.host);
    const timeout = this.#route.readTimeoutMs;
    this.#ctx.pools.get(replica.origin).dispatch(
      {
        path: replica.pathPrefix + this.#path,
        method: this.#req.method as Dispatcher.HttpMethod,
        headers: this.#head.forward,
        body: this.#body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        servername: replica.servername,
      } as Dispatcher.DispatchOptions,
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    this.#sent = true;
    this.#reached = true;
    if (this.#clientGone) abort(new ClientGoneError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational answers are not relayed; the final response follows.
    if (statusCode < 200) return true;
    const replica = this.#replica!;
    this.#status = statusCode;
    // A success counts once the body ended (`onComplete`): a stream cut after its head is a failure.
    if (statusCode >= 500) this.#route.balancer.failed(replica, Date.now(), `HTTP ${statusCode}`);
    if (statusCode >= 400 && !this.#clientGone && this.#route.resilience.policy.retriesStatus(statusCode)) {
      const delay = this.#retryDelayFor(statusCode);
      if (delay >= 0) {
        // Nothing went to the client: read the answer to its end (the connection stays usable), then retry.
        this.#discard = true;
        this.#retryDelay = delay;
        return true;
      }
    }
    this.#responded = true;
    this.#resume = resume;
    const res = this.#res;
    if (this.#clientGone) return false;
    const observed = this.#observed;
    if (observed) observed.replica = replica.id;
    const meters = relayHead(
      res,
      this.#route,
      this.#ctx.closing,
      this.#head.requestId,
      statusCode,
      statusText,
      rawHeaders,
      observed,
      this.#withhold,
    );
    if (meters === null) {
      // A header Node refuses to write (invalid characters): the replica's answer is unusable.
      this.#responded = false;
      this.#abort?.(new BadResponseError());
      return false;
    }
    this.#meter = meters.meter;
    this.#scanner = meters.scanner;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#discard) return true;
    let out = chunk;
    const observed = this.#observed;
    if (observed) {
      if (observed.firstByteAt < 0) observed.firstByteAt = performance.now();
      observed.json?.feed(chunk);
    }
    const meter = this.#meter;
    if (meter) {
      const wasDone = meter.done;
      out = meter.feed(chunk, performance.now());
      if (!wasDone && meter.done) this.#release();
      if (out.length === 0) return true;
    } else if (this.#scanner?.feed(chunk)) {
      this.#scanner = null;
      this.#release();
    }
    if (observed) observed.bytesOut += out.length;
    // Node corks the socket on a write until the next tick, so the chunks parsed from one read of
    // the replica's socket (and the headers) leave in one write, without waiting for later data.
    if (this.#res.write(out)) return true;
    this.#res.once("drain", this.#resume!);
    return false;
  }

  onComplete(): void {
    if (this.#discard) {
      this.#retryNext();
      return;
    }
    // A success counts once the body ended (a discarded answer was retried: neither).
    if (this.#status < 500 && this.#replica) this.#route.balancer.succeeded(this.#replica);
    endResponse(this.#res, this.#meter, this.#observed);
    this.#finish();
  }

  onError(err: Error): void {
    const replica = this.#replica;
    if (this.#clientGone || err instanceof ClientGoneError) {
      this.#finish();
      return;
    }
    if (err instanceof BodyTooLargeError) {
      this.#reached = false;
      this.#fail(413, `request body larger than client_max_body_size (${err.limit} bytes)`, true);
      return;
    }
    const code = errorCode(err);
    if (replica && !NOT_A_REPLICA_FAULT.has(code))
      this.#metrics?.upstreamError(replica.id, failureKind(code, this.#sent));
    if (this.#discard) {
      // The dropped answer failed on its way: the retry was decided already.
      this.#retryNext();
      return;
    }
    if (this.#responded) {
      // Too late for a status code: cut the client's response so it sees a truncated body, not a whole one.
      // A stream that dies or stalls after its head is a failure of the replica (docs/health.md).
      if (this.#status < 500 && !NOT_A_REPLICA_FAULT.has(code))
        this.#route.balancer.failed(replica!, Date.now(), code === "UND_ERR_BODY_TIMEOUT" ? "body timeout" : code);
      this.#res.destroy();
      this.#finish();
      return;
    }
    const timeout = code === "UND_ERR_HEADERS_TIMEOUT";
    // A replica that sends no head in time failed too (docs/health.md), whether or not it is retried.
    if (replica && !NOT_A_REPLICA_FAULT.has(code))
      this.#route.balancer.failed(replica, Date.now(), timeout ? "no response head in time" : code);
    const failure = attemptFailure(err, code, this.#sent, timeout);
    if (replica) {
      const delay = this.#retryDelayFor(failure);
      if (delay >= 0) {
        this.#retryDelay = delay;
        this.#retryNext();
        return;
      }
    }
    const [status, message] = failureReply(err, code, this.#sent, timeout);
    this.#fail(status, message);
  }

  #retryDelayFor(failure: Failure | number): number {
    return retryDelayFor(failure, {
      route: this.#route,
      replica: this.#replica!,
      tried: this.#tried,
      attempts: this.#attempts,
      relayed: this.#responded,
      body: this.#body,
      metrics: this.#metrics,
    });
  }

  /** The failed attempt's replica joins the tried ones; the next attempt starts after the back-off. */
  #retryNext(): void {
    this.#discard = false;
    const replica = this.#replica!;
    this.#release();
    this.#replica = null;
    this.#abort = null;
    if (this.#tried) this.#tried.push(replica);
    else this.#tried = [replica];
    if (this.#clientGone) {
      this.#finish();
      return;
    }
    if (this.#retryDelay <= 0) this.#attempt();
    else this.#backoff = setTimeout(onBackoff, this.#retryDelay, this);
  }

  /** The back-off before a retry is over. */
  backedOff(): void {
    this.#backoff = null;
    if (this.#clientGone || this.#done) this.#finish();
    else this.#attempt();
  }

  #fail(status: number, message: string, close = false): void {
    if (!this.#clientGone)
      replyJson(this.#res, status, message, {
        close: close || this.#ctx.closing,
        cors: this.#route.model !== null,
      });
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
    if (this.#backoff !== null) {
      clearTimeout(this.#backoff);
      this.#backoff = null;
    }
    this.#seat.leave();
    if (this.#reached) this.#route.counter.record((performance.now() - this.#startedAt) / 1000, Date.now());
    this.#ctx.end();
  }

  #release(): void {
    if (this.#held === null) return;
    this.#held.inFlight--;
    this.#held = null;
    if (this.#lease !== 0) {
      this.#ctx.routing.release(this.#lease);
      this.#lease = 0;
    }
  }

  /** The client's side closed: if the exchange is not done, the client went away mid-way. */
  clientClosed(): void {
    if (this.#done || this.#res.writableFinished) return;
    this.#clientGone = true;
    // Waiting for a slot or a retry: nothing runs to abort.
    if (this.#seat.waiting || this.#backoff !== null) {
      this.#finish();
      return;
    }
    // Before onConnect there is nothing to abort yet; onConnect aborts on arrival.
    this.#abort?.(new ClientGoneError());
  }
}
