/**
 * @module
 * One request through the built-in PD routing (docs/pd.md), as SMG's HTTP PD router does it
 * (`pd_router.rs` `execute_dual_dispatch`), going through the same steps as a co-located exchange
 * (`forward.ts`) where they apply:
 *
 * - admission: the service's gate gives it a slot or a place in its queue first (`admission/`); a PD
 *   request is one request there, whatever the replicas it takes;
 * - `usage: include`: a streamed completion is asked for its usage on the body sent to both sides,
 *   and decode's usage-only event is withheld from the client (`observe/include-usage.ts`);
 * - the decision: a prefill replica (prefill policy, on the request's text) and a decode replica
 *   (decode policy) are asked of the routing gate in the same turn, so a child process sends both in
 *   one message to the host's routing state (`routing-gate.ts`, keys from `pd-side.ts`), with the
 *   gate's fallbacks; each holds its lease and the replica's in-flight count while its side runs;
 * - both sides at once with the bootstrap fields (`bootstrap.ts`, `pd-legs.ts`); prefill's answer is
 *   read to its end and dropped as it comes (its end is the prefill's latency, and its load goes
 *   back there); once both heads are 2xx and prefill's answer ended, decode's is relayed through
 *   `exchange-io.ts`'s head and meters (`pd-relay.ts`), so TTFT, ITL and tokens are measured on
 *   what the client gets; the observation names decode as the replica and prefill beside it;
 * - failures: the first side to fail cancels the other and is blamed (health, `gateplane_pd_failures_total`);
 *   nothing reached the client yet, so a new pair is tried up to the retry policy's attempts, avoiding
 *   the replicas that failed; then the client gets the failing side's error (decode's as one SSE error
 *   event when it asked for a stream, as SMG);
 * - the service's stats count the request once (autoscaling), when some side was sent it.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { AdmissionSeat, type SeatHolder } from "../admission/admission-seat.ts";
import { replyRefused } from "../admission/refusal.ts";
import { errorCode, failureKind } from "../attempt-failure.ts";
import type { ReplicaState } from "../balancer.ts";
import type { ProxyContext } from "../context.ts";
import type { RequestHead } from "../headers.ts";
import { includeUsage, usagePath } from "../observe/include-usage.ts";
import { type Observation, observation } from "../observe/observation.ts";
import type { ServiceMeter } from "../observe/service-meter.ts";
import { replyJson } from "../replies.ts";
import type { ServiceRoute } from "../routes.ts";
import type { RoutedService } from "../routing-gate.ts";
import { withBootstrap } from "./bootstrap.ts";
import { dropLeg, type LastFailure, replyError, sendBoth } from "./pd-legs.ts";
import { relayDecode } from "./pd-relay.ts";
import type { PdRoute } from "./pd-route.ts";
import type { PdSide } from "./pd-side.ts";

/** A side's hold on its replica: its in-flight count, its meter's, the host state's lease (0: none). */
interface Held {
  side: PdSide;
  replica: ReplicaState;
  lease: number;
  released: boolean;
}

export class PdExchange implements SeatHolder {
  readonly #ctx: ProxyContext;
  readonly #res: ServerResponse;
  readonly #route: ServiceRoute;
  readonly #pd: PdRoute;
  readonly #head: RequestHead;
  readonly #path: string;
  readonly #startedAt: number;
  readonly #text: string;
  readonly #headers: IncomingHttpHeaders;
  #raw: Buffer;
  #body: Record<string, unknown>;
  /** The gateway asked for the stream's usage (`usage: include`): decode's usage-only event is withheld. */
  #withhold = false;
  readonly #observed: Observation | undefined;
  readonly #metrics: ServiceMeter | null;
  readonly #abort = new AbortController();
  /** Its slot or place at the service's admission gate, and the counts that follow them. */
  readonly #seat: AdmissionSeat;
  /** Some side was sent the request: it counts in the stats. */
  #reached = false;
  #gone = false;
  #done = false;

  constructor(
    ctx: ProxyContext,
    res: ServerResponse,
    route: ServiceRoute,
    head: RequestHead,
    path: string,
    startedAt: number,
    raw: Buffer,
    body: Record<string, unknown>,
    text: string,
    headers: IncomingHttpHeaders,
  ) {
    this.#ctx = ctx;
    this.#res = res;
    this.#route = route;
    this.#pd = route.pd!;
    this.#head = head;
    this.#path = path;
    this.#startedAt = startedAt;
    this.#raw = raw;
    this.#body = body;
    this.#text = text;
    this.#headers = headers;
    this.#observed = observation(res);
    this.#metrics = route.metrics;
    this.#seat = new AdmissionSeat(this, route, route.metrics);
  }

  start(): void {
    this.#ctx.begin();
    const observed = this.#observed;
    if (observed) {
      observed.route = this.#route;
      observed.bytesIn = this.#raw.length;
      // The observation's `close` listener tells the exchange first.
      observed.exchange = this;
    } else this.#res.once("close", () => this.clientClosed());
    if (this.#route.usageInclude && usagePath("POST", this.#path)) {
      const asked = includeUsage(this.#raw);
      if (asked) {
        this.#raw = asked;
        this.#body = JSON.parse(asked.toString("utf8")) as Record<string, unknown>;
        this.#withhold = true;
      }
    }
    this.#seat.ask(this.#headers);
  }

  /** The client left (`SeatHolder`). */
  get gone(): boolean {
    return this.#gone;
  }

  /** Admitted after the client left (`SeatHolder`). */
  end(): void {
    this.#finish();
  }

  /** The client's side closed: if the exchange is not done, the client went away mid-way. */
  clientClosed(): void {
    if (this.#done || this.#res.writableFinished) return;
    this.#gone = true;
    if (this.#seat.waiting) this.#finish();
    else this.#abort.abort();
  }

  /** Refused at admission (`SeatHolder`). */
  refuse(refusal: "full" | "timeout"): void {
    if (!this.#gone) {
      const route = this.#route;
      const closing = this.#ctx.closing;
      replyRefused(this.#res, refusal, route.name, route.model !== null, route.resilience.retryAfterSeconds, closing);
    }
    this.#finish();
  }

  /** Admitted (`SeatHolder`): both sides are chosen and sent. */
  go(): void {
    const cors = this.#route.model !== null;
    void this.#run()
      .catch((error: unknown) => {
        this.#ctx.log(`pd: service ${this.#route.name}: ${(error as Error).message}`);
        if (!this.#res.headersSent) replyJson(this.#res, 502, "PD exchange failed", { cors });
        else this.#res.destroy();
      })
      .finally(() => this.#finish());
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#seat.leave();
    if (this.#reached) this.#route.counter.record((performance.now() - this.#startedAt) / 1000, Date.now());
    this.#ctx.end();
  }

  /** The routing gate's decision for a side (at once, or after one round trip to the host's state). */
  #decide(side: RoutedService, tried: readonly ReplicaState[], text: string): Promise<Held | null> {
    return new Promise((resolve) =>
      this.#ctx.routing.pick(side, tried.length > 0 ? tried : null, text, {
        routed: (replica, lease) =>
          resolve(replica ? this.#hold(side === this.#pd.prefillSide ? "prefill" : "decode", replica, lease) : null),
      }),
    );
  }

  /**
   * A pair for the next attempt: both sides asked in the same turn (one IPC message). A retry avoids
   * the replicas that failed; once a side tried them all it picks among all again (SMG re-picks the
   * whole pair every time). Null: a side has no replica left.
   */
  async #pair(
    triedPrefill: readonly ReplicaState[],
    triedDecode: readonly ReplicaState[],
  ): Promise<[Held, Held] | null> {
    const pd = this.#pd;
    let [prefill, decode] = await Promise.all([
      this.#decide(pd.prefillSide, triedPrefill, this.#text),
      this.#decide(pd.decodeSide, triedDecode, ""),
    ]);
    if (!prefill && triedPrefill.length > 0) prefill = await this.#decide(pd.prefillSide, [], this.#text);
    if (!decode && triedDecode.length > 0) decode = await this.#decide(pd.decodeSide, [], "");
    if (prefill && decode) return [prefill, decode];
    if (prefill) this.#let(prefill);
    if (decode) this.#let(decode);
    return null;
  }

  #hold(side: PdSide, replica: ReplicaState, lease: number): Held {
    replica.inFlight++;
    if (this.#metrics) this.#metrics.pdReplica(side, replica.id).inFlight++;
    return { side, replica, lease, released: false };
  }

  /** Gives a side's hold back (once). */
  #let(held: Held): void {
    if (held.released) return;
    held.released = true;
    held.replica.inFlight--;
    if (this.#metrics) this.#metrics.pdReplica(held.side, held.replica.id).inFlight--;
    if (held.lease !== 0) this.#ctx.routing.release(held.lease);
  }

  /** Prefill's answer was read to its end: its side's work is over (its load goes back, its time is its latency). */
  #prefillRead(prefill: Held): void {
    const at = performance.now();
    this.#let(prefill);
    this.#pd.prefill.succeeded(prefill.replica);
    this.#metrics?.pdReplica("prefill", prefill.replica.id).prefill.observe((at - this.#startedAt) / 1000);
    if (this.#observed) this.#observed.prefillAt = at;
  }

  #failed(side: PdSide, replica: ReplicaState, reason: string): void {
    if (this.#metrics) this.#metrics.pdReplica(side, replica.id).failures++;
    (side === "prefill" ? this.#pd.prefill : this.#pd.decode).failed(replica, Date.now(), `${side}: ${reason}`);
  }

  async #run(): Promise<void> {
    const route = this.#route;
    const retry = route.resilience.policy;
    const signal = this.#abort.signal;
    const observed = this.#observed;
    const triedPrefill: ReplicaState[] = [];
    const triedDecode: ReplicaState[] = [];
    let last: LastFailure | null = null;
    for (let attempt = 1; attempt <= retry.attempts; attempt++) {
      if (signal.aborted) return;
      const pair = await this.#pair(triedPrefill, triedDecode);
      if (!pair) break;
      const [prefill, decode] = pair;
      try {
        if (signal.aborted) return;
        if (observed) {
          // The record names the pair last tried: decode as the replica (its answer or its failure), prefill beside it.
          observed.retries = attempt - 1;
          observed.replica = decode.replica.id;
          observed.prefillReplica = prefill.replica.id;
          observed.prefillAt = -1;
        }
        const outcome = await this.#attempt(prefill, decode);
        if (outcome === null) return;
        last = outcome;
        if (!outcome.retry) break;
        (outcome.side === "prefill" ? triedPrefill : triedDecode).push(
          outcome.side === "prefill" ? prefill.replica : decode.replica,
        );
      } finally {
        this.#let(prefill);
        this.#let(decode);
      }
    }
    if (this.#res.headersSent || this.#res.destroyed) return;
    const cors = route.model !== null;
    if (!last) {
      replyJson(this.#res, 503, `service ${route.name} has no prefill or decode replica left to try`, { cors });
      return;
    }
    replyError(this.#res, last, this.#body.stream === true, cors);
  }

  /** One pair: null when the client got its answer (or left), else the failure to retry or report. */
  async #attempt(prefill: Held, decode: Held): Promise<LastFailure | null> {
    const route = this.#route;
    const pd = this.#pd;
    const sent = withBootstrap(this.#raw, this.#body, this.#path, {
      host: prefill.replica.hostname,
      port: pd.bootstrapPorts.get(prefill.replica.id) ?? null,
    });
    this.#reached = true;
    const signal = this.#abort.signal;
    const both = await sendBoth(
      this.#ctx,
      route,
      this.#head,
      this.#path,
      sent,
      prefill.replica,
      decode.replica,
      signal,
      () => this.#prefillRead(prefill),
    );
    try {
      const { legs, first, cancel } = both;
      if (signal.aborted) {
        for (const leg of legs) await dropLeg(leg);
        return null;
      }
      const [p, d] = legs;
      if (first !== null) {
        // The side that failed first is the one to blame (the other was cancelled for it).
        const side: PdSide = first;
        const leg = side === "prefill" ? p : d;
        const cut = leg.read ? await leg.read : null;
        const status = leg.response && !cut ? leg.response.statusCode : 502;
        const error = cut
          ? cut.message
          : leg.response
            ? await leg.response.body.text().catch(() => "")
            : leg.error!.message;
        for (const other of legs) if (other !== leg) await dropLeg(other);
        this.#failed(side, leg.replica, leg.response && !cut ? `status ${status}` : error);
        if (!leg.response) {
          const code = errorCode(leg.error!);
          route.metrics?.upstreamError(leg.replica.id, failureKind(code, code !== "ECONNREFUSED"));
        }
        return {
          status,
          body: leg.response && !cut ? error : `${side} replica ${leg.replica.id} failed: ${error}`,
          side,
          retry: !leg.response || cut !== null || route.resilience.policy.retriesStatus(status),
        };
      }
      // Both heads are 2xx: decode's answer is relayed once prefill's was read to its end and dropped.
      const cut = await p.read!;
      if (cut) {
        cancel("decode");
        await dropLeg(d);
        if (signal.aborted) return null;
        this.#failed("prefill", prefill.replica, cut.message);
        return {
          status: 502,
          body: `prefill replica ${prefill.replica.id} failed: ${cut.message}`,
          side: "prefill",
          retry: true,
        };
      }
      const relayed = await relayDecode(this.#ctx, this.#res, this.#route, this.#head.requestId, d.response!, {
        observed: this.#observed,
        withhold: this.#withhold,
        done: () => this.#let(decode),
      });
      if (relayed === "ok") pd.decode.succeeded(decode.replica);
      else if (relayed !== "gone" && !this.#gone) this.#failed("decode", decode.replica, relayed.message);
      return null;
    } finally {
      both.done();
    }
  }
}
