/**
 * @module
 * The count a latency metric asks for (`scaling.metric: ttft | itl | queue`), before the delays
 * `autoscaler.ts` applies to every metric alike. Pure: one window of aggregated stats, the current
 * count and the remembered capacity in; the wanted count, the sentence saying why and the capacity to
 * remember out.
 *
 * The rule, in order (docs/autoscaling.md says the same):
 * 1. Observed: `ttft`/`itl` — the p90 of the window's histogram merged over gateway replicas (never
 *    an average of percentiles); `queue` — the engines' mean waiting requests per replica,
 *    `waiting / samples`.
 * 2. From zero: any request in the window → max(1, min) at once (as rps). No request → stay.
 * 3. Idle: no request in the window → min (after `scale_down_delay`), like rps at 0 requests.
 * 4. No signal although requests came (none measured, no `llm` from older agents, no engine queue
 *    samples): hold the count and say why. Guessing would scale on nothing.
 * 5. Dead band: observed within ±10 % of the target → no change.
 * 6. Proportional: `ceil(current × observed / target)`, at most ×2 up per decision, and down at
 *    most ÷2 once a capacity is remembered (7), one replica while none is (latency is not linear in
 *    load: bounded steps let the next window show what a step did, and with nothing known a reading
 *    at the latency floor would halve the count straight past the knee).
 * 7. Remembered capacity: latency has a floor (prefill time, zero queue), so below the knee of the
 *    load curve a low reading says nothing about how much load a replica could take; a proportional
 *    scale-down would land past the knee and go back up, forever, on a steady load. So when the
 *    metric is over the band on a window that saw only the current count, the requests per second per
 *    replica are remembered (`capacity`), and a scale-down never goes below `rps / (0.9 × capacity)`.
 *    A reading below the band at a per-replica rate more than 10 % above the remembered one shows
 *    the workload got lighter: the capacity is forgotten (and learned again at the next overload).
 * 8. Clamp to min..max.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import { histogramCount, type LlmWindow, quantile, TPOT_BOUNDS, TTFT_BOUNDS } from "../schema/llm-stats.ts";
import type { ServiceConfiguration } from "../schema/service.ts";

/** No change while observed / target is within 1 ± this. */
export const DEAD_BAND = 0.1;
/** The most one decision multiplies (up) or divides (down) the count by. */
export const MAX_STEP = 2;
/** The quantile `target` is for `ttft` and `itl`. */
export const LATENCY_QUANTILE = 0.9;

type Scaling = NonNullable<ServiceConfiguration["scaling"]>;
type Window = ServiceStats["windows"]["60"];

export interface LatencyInput {
  scaling: Scaling;
  replicas: ServiceConfiguration["replicas"];
  /** The configured window of the aggregated stats. */
  stat: Window;
  current: number;
  /** Requests per second per replica at which the metric last went over its target; null: unknown. */
  capacity: number | null;
  /** Whether the window saw only `current` (no change within it): only then is a reading a capacity. */
  settled: boolean;
}

export interface LatencyWant {
  /** The count wanted, within min..max; `current` when holding. */
  target: number;
  reason: string;
  capacity: number | null;
}

const clamp = (n: number, min: number, max: number) => Math.min(Math.max(n, min), max);
/** Three significant digits at most: `2.4`, `0.045`, `12.3`. */
const num = (x: number) => String(Number(x.toPrecision(3)));

/** The metric's reading of one window (null: nothing observed), and how it reads in a reason. */
export function observe(metric: Scaling["metric"], llm: LlmWindow | undefined): number | null {
  if (metric === "queue") return llm?.queue && llm.queue.samples > 0 ? llm.queue.waiting / llm.queue.samples : null;
  if (metric !== "ttft" && metric !== "itl") return null;
  const h = llm?.[metric];
  if (!h || histogramCount(h) === 0) return null;
  return quantile(metric === "ttft" ? TTFT_BOUNDS : TPOT_BOUNDS, h, LATENCY_QUANTILE);
}

const describe = (metric: Scaling["metric"], value: number) =>
  metric === "queue" ? `queue ${num(value)} waiting per replica` : `${metric} p90 ${num(value)} s`;
const describeTarget = (metric: Scaling["metric"], target: number) =>
  metric === "queue" ? `target ${num(target)}` : `target ${num(target)} s`;

export function latencyWant(input: LatencyInput): LatencyWant {
  const { scaling, stat, current, settled } = input;
  const { min, max } = input.replicas;
  const { metric, target: goal, window } = scaling;
  const rps = stat.requests / window;
  let capacity = input.capacity;
  const within = (n: number, formula: string) => {
    const t = clamp(n, min, max);
    return { target: t, reason: formula + (t !== n ? ` (clamped to ${min}..${max})` : ""), capacity };
  };
  if (stat.requests === 0) return within(0, `${metric}: no requests over ${window}s → 0`);
  if (current === 0) return within(1, `${metric}: ${stat.requests} requests over ${window}s at zero replicas → 1`);
  const observed = observe(metric, stat.llm);
  if (observed === null) {
    const why =
      metric === "queue" ? "no engine queue samples (no engine signals scraped)" : `none with a ${metric} measured`;
    return {
      target: current,
      reason: `${metric}: ${stat.requests} requests over ${window}s, ${why}; holding ${current}`,
      capacity,
    };
  }
  const ratio = observed / goal;
  const head = `${describe(metric, observed)} over ${window}s / ${describeTarget(metric, goal)}`;
  const perReplica = rps / current;
  if (ratio > 1 + DEAD_BAND) {
    // Overload seen on a window of this count alone: the load one replica takes at the knee.
    if (settled) capacity = perReplica;
  } else if (settled && capacity !== null && ratio < 1 - DEAD_BAND && perReplica > capacity * (1 + DEAD_BAND)) {
    // Clearly below target at clearly more load than the remembered knee: the knee moved. Both
    // margins keep noise at the knee itself (a p90 near target, rps ± a few %) from forgetting it.
    capacity = null;
  }
  if (Math.abs(ratio - 1) <= DEAD_BAND) return within(current, `${head}: within ±${DEAD_BAND * 100}% → ${current}`);
  const proportional = Math.ceil(current * ratio);
  // Down without a remembered capacity: one replica at a time (the knee is unknown, and a reading
  // at the latency floor would otherwise halve the count straight past it).
  const lowest = capacity === null ? current - 1 : Math.ceil(current / MAX_STEP);
  let want = clamp(proportional, lowest, current * MAX_STEP);
  let note =
    want !== proportional
      ? `, step limited to ${ratio > 1 ? `×${MAX_STEP}` : capacity === null ? "−1 (capacity not yet seen)" : `÷${MAX_STEP}`}`
      : "";
  if (want < current && capacity !== null) {
    const floor = Math.ceil(rps / ((1 - DEAD_BAND) * capacity));
    if (floor > want) {
      want = Math.min(current, floor);
      note = `, but ${num(rps)} rps needs ${floor} below the ${num(capacity)} rps per replica at which ${metric} last passed its target`;
    }
  }
  return within(want, `${head} → ${proportional === want ? want : `${proportional}${note} → ${want}`}`);
}
