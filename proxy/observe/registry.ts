/**
 * @module
 * The metrics of one proxy process: an `ExchangeSink` (`sink`) that turns each request's record into
 * cumulative series, plus the few counts the record does not carry (in-flight requests, failed
 * attempts, holds: `ServiceMeter`'s methods, called where they happen). It follows the services of
 * the document in force (`retain`): a service or replica that leaves takes its series with it, so
 * memory grows with the services and replicas of the document (`service-meter.ts` has the figures),
 * never with traffic. A process hands its series over as plain families (`families`), which the
 * parent adds up over processes (`families.ts`), and its window sums for the agent's report (`windows`).
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import type { LlmWindow, LlmWindowName } from "../../schema/llm-stats.ts";
import { REFUSAL_REASONS } from "../admission/retry-policy.ts";
import { labelsOf, METRICS, type MetricSpec } from "./catalog.ts";
import type { ExchangeRecord, ExchangeSink } from "./exchange-record.ts";
import type { HistogramSample, MetricFamily, ScalarSample } from "./families.ts";
import { CODE_CLASSES, codeIndex, type Hist, ServiceMeter, UPSTREAM_ERROR_KINDS } from "./service-meter.ts";
import { type TreePolicyEntry, treePolicyFamilies } from "./tree-policy-metrics.ts";

export type LlmWindows = Partial<Record<LlmWindowName, LlmWindow>>;

const histogramSample = (labels: string[], h: Hist): HistogramSample => ({
  labels,
  counts: Array.from(h.counts),
  sum: h.sum,
});

function family(spec: MetricSpec, samples: ScalarSample[] | HistogramSample[]): MetricFamily {
  if (spec.type === "histogram")
    return { name: spec.name, help: spec.help, type: "histogram", bounds: spec.bounds!, samples } as MetricFamily;
  return { name: spec.name, help: spec.help, type: spec.type, samples } as MetricFamily;
}

/** The service's model name as the document gives it, "" for none. */
const modelOf = (service: ConfigDocument["services"][number]) => service.model?.name ?? "";

export class MetricsRegistry {
  readonly #services = new Map<string, ServiceMeter>();
  /** Requests no service took (unknown host, the gateway's own paths), by status class. */
  readonly #unrouted = new Float64Array(CODE_CLASSES.length);

  /** Called once per request after its response ended (never throws). */
  readonly sink: ExchangeSink = (record: ExchangeRecord): void => {
    if (record.service === null) {
      this.#unrouted[codeIndex(record.status)]!++;
      return;
    }
    // A service that left the document meanwhile counts into nothing.
    this.#services.get(record.service)?.record(record);
  };

  /** The meter of a service of the document in force (null: not in it). */
  service(name: string): ServiceMeter | null {
    return this.#services.get(name) ?? null;
  }

  /** Follows a new document; a service whose model changed starts new series (their labels changed). */
  retain(doc: ConfigDocument | null): void {
    const keep = new Set<string>();
    for (const service of doc?.services ?? []) {
      keep.add(service.name);
      this.#follow(service);
    }
    for (const name of this.#services.keys()) if (!keep.has(name)) this.#services.delete(name);
  }

  /** Follows a delta: only the services it changes or removes. */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    for (const name of removed) this.#services.delete(name);
    for (const service of changed) this.#follow(service);
  }

  #follow(service: ConfigService): void {
    let meter = this.#services.get(service.name);
    if (!meter || meter.model !== modelOf(service)) {
      meter = new ServiceMeter(service.name, modelOf(service));
      this.#services.set(service.name, meter);
    }
    // A meter without replica series has nothing to drop: no set of ids made per service and document.
    if (meter.hasReplicaSeries) meter.retainReplicas(new Set(service.replicas.map((r) => r.id)));
  }

  /** Each service's window sums (services without LLM traffic in any window are left out). */
  windows(nowMs: number): Map<string, LlmWindows> {
    const out = new Map<string, LlmWindows>();
    for (const [name, meter] of this.#services) {
      const windows = meter.ring?.windows(nowMs);
      if (windows && Object.keys(windows).length > 0) out.set(name, windows);
    }
    return out;
  }

  /**
   * Every series of this process. `held(service)`: requests held now; `treePolicies`: the counts of
   * the cache_aware and prefix_load policies this process decides with (its own fallbacks, or the
   * host's state).
   */
  families(held: (service: string) => number, treePolicies: readonly TreePolicyEntry[] = []): MetricFamily[] {
    const h = {
      ttft: [] as HistogramSample[],
      tpot: [] as HistogramSample[],
      itl: [] as HistogramSample[],
      duration: [] as HistogramSample[],
      tokenUsage: [] as HistogramSample[],
    };
    const c = {
      tokens: [] as ScalarSample[],
      requests: [] as ScalarSample[],
      incomplete: [] as ScalarSample[],
      inFlight: [] as ScalarSample[],
      upstreamErrors: [] as ScalarSample[],
      retries: [] as ScalarSample[],
      rateLimited: [] as ScalarSample[],
      heldTotal: [] as ScalarSample[],
      held: [] as ScalarSample[],
      retriesRefused: [] as ScalarSample[],
      admissionQueued: [] as ScalarSample[],
      admissionRefused: [] as ScalarSample[],
    };
    const queueWait: HistogramSample[] = [];
    const pdInFlight: ScalarSample[] = [];
    const pdFailures: ScalarSample[] = [];
    const pdPrefill: HistogramSample[] = [];
    for (const meter of this.#services.values()) {
      const s = meter.labels;
      c.inFlight.push({ labels: s, value: meter.inFlight });
      c.held.push({ labels: s, value: held(meter.name) });
      if (meter.retries > 0) c.retries.push({ labels: s, value: meter.retries });
      if (meter.rateLimited > 0) c.rateLimited.push({ labels: s, value: meter.rateLimited });
      if (meter.held > 0) c.heldTotal.push({ labels: s, value: meter.held });
      meter.retriesRefused.forEach((n, i) => {
        if (n > 0) c.retriesRefused.push({ labels: [...s, "reason", REFUSAL_REASONS[i]!], value: n });
      });
      meter.admissionRefusals.forEach((n, i) => {
        if (n > 0) c.admissionRefused.push({ labels: [...s, "reason", i === 0 ? "full" : "timeout"], value: n });
      });
      if (meter.queued > 0 || meter.queueWaited) {
        c.admissionQueued.push({ labels: s, value: meter.queued });
        queueWait.push(histogramSample(s, meter.queueWait));
      }
      for (const pd of meter.pd.values()) {
        const byRole = [...pd.labels, "role", pd.role];
        pdInFlight.push({ labels: byRole, value: pd.inFlight });
        if (pd.failures > 0) pdFailures.push({ labels: byRole, value: pd.failures });
        if (pd.prefill.count > 0) pdPrefill.push(histogramSample(pd.labels, pd.prefill));
      }
      for (const replica of meter.replicas.values()) {
        replica.requests.forEach((n, i) => {
          if (n > 0) c.requests.push({ labels: [...replica.labels, "code", CODE_CLASSES[i]!], value: n });
        });
        if (replica.incomplete > 0) c.incomplete.push({ labels: replica.labels, value: replica.incomplete });
        replica.upstreamErrors.forEach((n, i) => {
          if (n > 0) c.upstreamErrors.push({ labels: [...replica.labels, "kind", UPSTREAM_ERROR_KINDS[i]!], value: n });
        });
        const tokens = (type: string, source: string, value: number) => {
          if (value > 0)
            c.tokens.push({
              labels: [...replica.modelLabels, ...labelsOf("gen_ai_token_type", type, "source", source)],
              value,
            });
        };
        tokens("input", "usage", replica.inputTokens);
        tokens("output", "usage", replica.outputTokens);
        tokens("output", "estimate", replica.estimatedOutputTokens);
        for (const op of replica.operations) {
          if (!op) continue;
          h.duration.push(histogramSample(op.labels, op.duration));
          if (op.ttft.count > 0) h.ttft.push(histogramSample(op.labels, op.ttft));
          if (op.tpot.count > 0) h.tpot.push(histogramSample(op.labels, op.tpot));
          if (op.itl.count > 0) h.itl.push(histogramSample(op.labels, op.itl));
          if (op.inputTokens.count > 0)
            h.tokenUsage.push(histogramSample([...op.labels, "gen_ai_token_type", "input"], op.inputTokens));
          if (op.outputTokens.count > 0)
            h.tokenUsage.push(histogramSample([...op.labels, "gen_ai_token_type", "output"], op.outputTokens));
        }
      }
    }
    this.#unrouted.forEach((n, i) => {
      if (n > 0) c.requests.push({ labels: ["code", CODE_CLASSES[i]!], value: n });
    });
    return [
      family(METRICS.ttft, h.ttft),
      family(METRICS.tpot, h.tpot),
      family(METRICS.duration, h.duration),
      family(METRICS.itl, h.itl),
      family(METRICS.tokenUsage, h.tokenUsage),
      family(METRICS.tokens, c.tokens),
      family(METRICS.requests, c.requests),
      family(METRICS.incomplete, c.incomplete),
      family(METRICS.inFlight, c.inFlight),
      family(METRICS.pdInFlight, pdInFlight),
      family(METRICS.pdPrefillDuration, pdPrefill),
      family(METRICS.pdFailures, pdFailures),
      family(METRICS.upstreamErrors, c.upstreamErrors),
      family(METRICS.retries, c.retries),
      family(METRICS.rateLimited, c.rateLimited),
      family(METRICS.heldTotal, c.heldTotal),
      family(METRICS.held, c.held),
      family(METRICS.retriesRefused, c.retriesRefused),
      family(METRICS.admissionQueued, c.admissionQueued),
      family(METRICS.admissionWait, queueWait),
      family(METRICS.admissionRefused, c.admissionRefused),
      ...treePolicyFamilies(treePolicies),
    ];
  }
}
