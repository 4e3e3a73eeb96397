/**
 * @module
 * One service's metrics in one proxy process: cumulative series per replica (requests by status
 * class, tokens, failures) and per replica and operation (the LLM histograms), plus the report's
 * window ring (`llm-windows.ts`). Everything is made on first use: a replica that never answered
 * has no series, an operation never asked for has no histograms, a service without traffic has no
 * ring. Memory per service: ~0.1 KiB without traffic (a meter whose series are all made on first
 * use), ~0.5 KiB once it had some, plus ~0.2 KiB per replica that answered, ~1 KiB per
 * (replica, operation) with LLM traffic (≤ 4 operations), and the ring (≤ 24 KiB).
 */
import { DURATION_BOUNDS, TOKEN_BOUNDS, TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import type { Refusal } from "../admission/refusal.ts";
import { REFUSAL_REASONS, type RefusalReason } from "../admission/retry-policy.ts";
import { labelsOf, OPERATIONS, operationOf, QUEUE_WAIT_BOUNDS } from "./catalog.ts";
import type { ExchangeRecord } from "./exchange-record.ts";
import { bucketOf, LlmRing } from "./llm-windows.ts";

/** Status classes by index: `code` label values. */
export const CODE_CLASSES = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;
export const codeIndex = (status: number): number => (status >= 100 && status < 600 ? Math.floor(status / 100) : 0);

/** Kinds of failed attempts (`upstreamErrors`' `kind` label). */
export const UPSTREAM_ERROR_KINDS = ["connect", "timeout", "closed", "invalid"] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/** A histogram in a process: counts per bucket (last: +Inf) and the sum. */
export class Hist {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    this.counts[bucketOf(this.bounds, value)]!++;
    this.sum += value;
  }
  get count(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }
}

/** The LLM histograms of one (replica, operation). */
export class OperationSeries {
  readonly labels: string[];
  readonly ttft = new Hist(TTFT_BOUNDS);
  readonly tpot = new Hist(TPOT_BOUNDS);
  readonly itl = new Hist(TPOT_BOUNDS);
  readonly duration = new Hist(DURATION_BOUNDS);
  readonly inputTokens = new Hist(TOKEN_BOUNDS);
  readonly outputTokens = new Hist(TOKEN_BOUNDS);
  constructor(labels: string[]) {
    this.labels = labels;
  }
}

export class ReplicaMeter {
  readonly labels: string[];
  readonly #modelLabels: string[];
  /** By status class (`CODE_CLASSES`). */
  readonly requests = new Float64Array(CODE_CLASSES.length);
  incomplete = 0;
  /** By `UPSTREAM_ERROR_KINDS`. */
  readonly upstreamErrors = new Float64Array(UPSTREAM_ERROR_KINDS.length);
  inputTokens = 0;
  outputTokens = 0;
  estimatedOutputTokens = 0;
  readonly operations: (OperationSeries | undefined)[] = new Array(OPERATIONS.length);

  constructor(service: string, replica: string, model: string) {
    this.labels = labelsOf("service", service, "replica", replica);
    this.#modelLabels = labelsOf("service", service, "replica", replica, "gen_ai_request_model", model);
  }

  get modelLabels(): string[] {
    return this.#modelLabels;
  }

  operation(index: number): OperationSeries {
    let series = this.operations[index];
    if (!series) {
      series = new OperationSeries([...this.#modelLabels, ...labelsOf("gen_ai_operation_name", OPERATIONS[index]!)]);
      this.operations[index] = series;
    }
    return series;
  }
}

/** A PD service's replica in its role (`pd/`): its held requests, prefill times, failures. */
export class PdReplicaMeter {
  readonly labels: string[];
  readonly role: "prefill" | "decode";
  inFlight = 0;
  failures = 0;
  /** Prefill replicas: arrival → the end of their answer (s). */
  readonly prefill = new Hist(TTFT_BOUNDS);
  constructor(service: string, replica: string, role: "prefill" | "decode") {
    this.role = role;
    this.labels = labelsOf("service", service, "replica", replica);
  }
}

/** What a meter without traffic reads as: no replicas, no refusals (shared, never written to). */
const NO_REPLICAS: ReadonlyMap<string, ReplicaMeter> = new Map();
const NO_PD: ReadonlyMap<string, PdReplicaMeter> = new Map();
const NO_RETRIES_REFUSED = new Float64Array(REFUSAL_REASONS.length);
const NO_ADMISSION_REFUSALS = new Float64Array(2);

export class ServiceMeter {
  readonly name: string;
  /** The service's configured model name, "" for none. */
  readonly model: string;
  /** Requests being forwarded now (`forward.ts`). */
  inFlight = 0;
  retries = 0;
  rateLimited = 0;
  held = 0;
  /** Requests in the admission queue now. */
  queued = 0;
  // Each of these is made on first use: a host holds one meter per service and process, and most
  // services of a large document see no traffic (issue 17: 10,000 services in ~300 MiB).
  #labels: string[] | null = null;
  #replicas: Map<string, ReplicaMeter> | null = null;
  #retriesRefused: Float64Array | null = null;
  #queueWait: Hist | null = null;
  #admissionRefusals: Float64Array | null = null;
  #ring: LlmRing | null = null;
  #pd: Map<string, PdReplicaMeter> | null = null;

  constructor(name: string, model: string) {
    this.name = name;
    this.model = model;
  }

  get labels(): string[] {
    this.#labels ??= labelsOf("service", this.name);
    return this.#labels;
  }

  /** The replicas that have series, by id. */
  get replicas(): ReadonlyMap<string, ReplicaMeter> {
    return this.#replicas ?? NO_REPLICAS;
  }

  /** A PD service's replicas by `role\0id`, made on first use. */
  get pd(): ReadonlyMap<string, PdReplicaMeter> {
    return this.#pd ?? NO_PD;
  }

  /** Retries not made, by `REFUSAL_REASONS`. */
  get retriesRefused(): Float64Array {
    return this.#retriesRefused ?? NO_RETRIES_REFUSED;
  }

  /** Admission refusals: [full, timeout]. */
  get admissionRefusals(): Float64Array {
    return this.#admissionRefusals ?? NO_ADMISSION_REFUSALS;
  }

  /** Time in the admission queue (made when first written to or read). */
  get queueWait(): Hist {
    this.#queueWait ??= new Hist(QUEUE_WAIT_BOUNDS);
    return this.#queueWait;
  }

  /** Whether anything waited in the admission queue (without making its histogram). */
  get queueWaited(): boolean {
    const h = this.#queueWait;
    return h !== null && (h.sum > 0 || h.counts.some((n) => n > 0));
  }

  get ring(): LlmRing | null {
    return this.#ring;
  }

  replica(id: string): ReplicaMeter {
    this.#replicas ??= new Map();
    let meter = this.#replicas.get(id);
    if (!meter) {
      meter = new ReplicaMeter(this.name, id, this.model);
      this.#replicas.set(id, meter);
    }
    return meter;
  }

  /** Keeps the series of these replica ids (and of the gateway's own answers). */
  retainReplicas(ids: ReadonlySet<string>): void {
    if (this.#replicas)
      for (const id of this.#replicas.keys()) if (id !== "" && !ids.has(id)) this.#replicas.delete(id);
    if (this.#pd)
      for (const [key, meter] of this.#pd)
        if (!ids.has(key.slice(key.indexOf("\u0000") + 1)) && meter.inFlight === 0) this.#pd.delete(key);
  }

  /** Whether any replica or PD side has series (`retainReplicas` has something to drop). */
  get hasReplicaSeries(): boolean {
    return (this.#replicas?.size ?? 0) > 0 || (this.#pd?.size ?? 0) > 0;
  }

  /** The PD meter of a replica in its role. */
  pdReplica(role: "prefill" | "decode", replica: string): PdReplicaMeter {
    const key = `${role}\u0000${replica}`;
    this.#pd ??= new Map();
    let meter = this.#pd.get(key);
    if (!meter) {
      meter = new PdReplicaMeter(this.name, replica, role);
      this.#pd.set(key, meter);
    }
    return meter;
  }

  retryRefused(reason: RefusalReason): void {
    this.#retriesRefused ??= new Float64Array(REFUSAL_REASONS.length);
    this.#retriesRefused[REFUSAL_REASONS.indexOf(reason)]!++;
  }

  admissionRefused(refusal: Refusal): void {
    this.#admissionRefusals ??= new Float64Array(2);
    this.#admissionRefusals[refusal === "full" ? 0 : 1]!++;
  }

  upstreamError(replica: string, kind: UpstreamErrorKind): void {
    this.replica(replica).upstreamErrors[UPSTREAM_ERROR_KINDS.indexOf(kind)]!++;
  }

  /** One request of this service is over. */
  record(r: ExchangeRecord): void {
    const replica = this.replica(r.replica ?? "");
    replica.requests[codeIndex(r.status)]!++;
    if (r.incomplete) replica.incomplete++;
    if (r.rateLimit === "refused") this.rateLimited++;
    this.retries += r.retries;
    const reached = r.replica !== null;
    const error = r.status >= 500 || r.incomplete;
    // An LLM answer: successful, with a first token, and either token counts or a model service.
    const llm = reached && r.status >= 200 && r.status < 300 && r.ttft !== null;
    const llmAnswer = llm && (r.outputTokens !== null || this.model !== "");
    if (reached) {
      const series = replica.operation(operationOf(r.path));
      series.duration.observe(r.duration);
      if (llmAnswer) {
        series.ttft.observe(r.ttft!);
        if (r.tpot !== null) series.tpot.observe(r.tpot);
        for (const gap of r.itl) series.itl.observe(gap);
      }
      if (r.inputTokens !== null) series.inputTokens.observe(r.inputTokens);
      if (r.outputTokens !== null && !r.tokensEstimated) series.outputTokens.observe(r.outputTokens);
    }
    if (r.inputTokens !== null) replica.inputTokens += r.inputTokens;
    if (r.outputTokens !== null) {
      if (r.tokensEstimated) replica.estimatedOutputTokens += r.outputTokens;
      else replica.outputTokens += r.outputTokens;
    }
    if (!reached && !error) return;
    this.#ring ??= new LlmRing();
    this.#ring.record(r, reached, llmAnswer, error, r.time + r.duration * 1000);
  }
}
