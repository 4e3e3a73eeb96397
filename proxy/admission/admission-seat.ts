/**
 * @module
 * A request's place at its service's admission gate, from asking to the end of its exchange: the
 * slot it holds or its place in the queue, and the service meter's counts that follow them (queued,
 * the queue wait, refusals, in flight). Both exchanges — co-located (`forward.ts`) and PD
 * (`pd/pd-exchange.ts`) — hold one, so admission behaves and is counted the same on both paths.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { ServiceMeter } from "../observe/service-meter.ts";
import type { AdmissionGate, AdmissionTicket, AdmissionWaiter } from "./admission-queue.ts";
import { priorityClass } from "./admission-queue.ts";
import type { ServiceResilience } from "./service-resilience.ts";

/** What the seat tells its exchange. */
export interface SeatHolder {
  /** Admitted, at once or after waiting: the request runs (it is counted in flight from here). */
  go(): void;
  /** Refused: `full` at once (no slot, no room in the queue), `timeout` after waiting its `queue_timeout`. */
  refuse(refusal: "full" | "timeout"): void;
  /** Admitted after its client left: the exchange only ends. */
  end(): void;
  /** The client went away. */
  readonly gone: boolean;
}

export class AdmissionSeat implements AdmissionTicket {
  readonly #holder: SeatHolder;
  readonly #route: { readonly resilience: ServiceResilience };
  readonly #metrics: ServiceMeter | null;
  #gate: AdmissionGate | null = null;
  #waiter: AdmissionWaiter | null = null;
  /** Counted in the meter's `inFlight` (past admission). */
  #counted = false;

  constructor(holder: SeatHolder, route: { readonly resilience: ServiceResilience }, metrics: ServiceMeter | null) {
    this.#holder = holder;
    this.#route = route;
    this.#metrics = metrics;
  }

  /** Waiting in the queue. */
  get waiting(): boolean {
    return this.#waiter !== null;
  }

  /** Asks the service's gate (a service without one admits at once); `headers` carry the priority, if the service reads one. */
  ask(headers: IncomingHttpHeaders): void {
    const resilience = this.#route.resilience;
    const gate = resilience.gate;
    if (gate !== null) {
      const header = resilience.priorityHeader;
      const admitted = gate.acquire(this, header === null ? undefined : () => priorityClass(headers[header]));
      if (admitted === "full") {
        this.#metrics?.admissionRefused("full");
        this.#holder.refuse("full");
        return;
      }
      if (admitted !== "admitted") {
        this.#waiter = admitted;
        if (this.#metrics) this.#metrics.queued++;
        return;
      }
      this.#gate = gate;
    }
    this.#enter();
  }

  #enter(): void {
    this.#counted = true;
    if (this.#metrics) this.#metrics.inFlight++;
    this.#holder.go();
  }

  /** A slot is the request's, after `waitedMs` in the queue. */
  admitted(waitedMs: number): void {
    this.#waiter = null;
    this.#gate = this.#route.resilience.gate;
    this.#left(waitedMs);
    if (this.#holder.gone) this.#holder.end();
    else this.#enter();
  }

  /** The wait passed the service's `queue_timeout`. */
  expired(waitedMs: number): void {
    this.#waiter = null;
    this.#left(waitedMs);
    this.#metrics?.admissionRefused("timeout");
    this.#holder.refuse("timeout");
  }

  #left(waitedMs: number): void {
    const metrics = this.#metrics;
    if (metrics) {
      metrics.queued--;
      metrics.queueWait.observe(waitedMs / 1000);
    }
  }

  /** The exchange ended: leaves the queue, gives the slot back, and stops counting in flight. Once is enough; more are no-ops. */
  leave(): void {
    if (this.#waiter !== null) {
      this.#route.resilience.gate?.cancel(this.#waiter);
      this.#waiter = null;
      if (this.#metrics) this.#metrics.queued--;
    }
    if (this.#gate !== null) {
      const gate = this.#gate;
      this.#gate = null;
      gate.release();
    }
    if (this.#counted) {
      this.#counted = false;
      if (this.#metrics) this.#metrics.inFlight--;
    }
  }
}
