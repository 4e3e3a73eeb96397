/**
 * @module
 * The autoscaling decision, as a pure function: configuration, aggregated stats, the current count,
 * the last scaling time and the clock in; the desired count and a sentence saying why out. The
 * GatewayObject stores and emits it. `metric: rps` is dstack's `RPSAutoscaler` exactly
 * (`desired = clamp(ceil(rps / target), min, max)`); `ttft`, `itl` and `queue` want the count
 * `latency-autoscaler.ts` computes (proportional, a ±10 % dead band, steps of at most ×2 / ÷2, a
 * remembered capacity against flapping; its comment has the rule). Every metric then goes through
 * the same delays: up from zero at once, otherwise `scale_up_delay` / `scale_down_delay` since the
 * last change; no decision while a running gateway replica has not reported.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { ServiceConfiguration } from "../schema/service.ts";
import { latencyWant } from "./latency-autoscaler.ts";

export interface ScalingInput {
  replicas: ServiceConfiguration["replicas"];
  scaling: ServiceConfiguration["scaling"];
  /** Summed over the gateway's running replicas; null when one of them has not reported (no decision). */
  stats: ServiceStats | null;
  /** dstack's "current desired count": the last decision, or the registered replicas before the first. */
  current: number;
  /** When the desired count last changed (ms since the epoch); null = never, so no delay applies. */
  lastScaledAt: number | null;
  now: number;
  /**
   * Latency metrics only: requests per second per replica at which the metric last went over its
   * target (`latency-autoscaler.ts`); null or absent when unknown.
   */
  capacity?: number | null;
}

export interface ScalingDecision {
  desired: number;
  reason: string;
  /**
   * When a held change (delay not elapsed) may go through: the caller re-evaluates then. Null when
   * nothing is waiting on the clock.
   */
  retryAt: number | null;
  /** Latency metrics only: the capacity to remember for the next decision. */
  capacity?: number | null;
}

const clamp = (n: number, min: number, max: number) => Math.min(Math.max(n, min), max);

/** `600` → `10m`, `90` → `1m30s`, `3600` → `1h`: how the configuration spells delays. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600}h`;
  if (s >= 60) return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
  return `${s}s`;
}

/** Requests per second with at most 2 decimals, as people read it. */
const formatRps = (rps: number) => String(Math.round(rps * 100) / 100);

export function decideReplicas(input: ScalingInput): ScalingDecision {
  const { min, max } = input.replicas;
  const { current, scaling } = input;
  if (!scaling) {
    const desired = clamp(current, min, max);
    return { desired, reason: `manual: replicas ${min === max ? min : `${min}..${max}`}`, retryAt: null };
  }
  const window = scaling.window as 30 | 60 | 300;
  const stat = input.stats?.windows[String(window) as "30" | "60" | "300"];
  if (!stat) {
    return {
      desired: current,
      reason: `no decision: not every running gateway replica reported stats (keeping ${current})`,
      retryAt: null,
    };
  }
  let target: number;
  let formula: string;
  let remembered: { capacity?: number | null } = {};
  if (scaling.metric === "rps") {
    const rps = stat.requests / window;
    const raw = Math.ceil(rps / scaling.target);
    target = clamp(raw, min, max);
    formula =
      `rps ${formatRps(rps)} over ${window}s / target ${scaling.target} → ${target}` +
      (raw !== target ? ` (clamped to ${min}..${max})` : "");
  } else {
    const want = latencyWant({
      scaling,
      replicas: input.replicas,
      stat,
      current,
      capacity: input.capacity ?? null,
      // A window that began after the last change saw only the current count.
      settled: input.lastScaledAt === null || input.now - input.lastScaledAt >= window * 1000,
    });
    target = want.target;
    formula = want.reason;
    remembered = { capacity: want.capacity };
  }
  if (target === current) return { desired: current, reason: formula, retryAt: null, ...remembered };
  if (target > current && current === 0)
    return { desired: target, reason: `${formula}; up from zero at once`, retryAt: null, ...remembered };
  const up = target > current;
  const delay = up ? scaling.scale_up_delay : scaling.scale_down_delay;
  const since = input.lastScaledAt === null ? null : (input.now - input.lastScaledAt) / 1000;
  if (since !== null && since < delay) {
    return {
      desired: current,
      reason:
        `${formula}; holding ${current}: scale-${up ? "up" : "down"} delay ${formatSeconds(delay)} not elapsed ` +
        `(last change ${formatSeconds(since)} ago)`,
      retryAt: input.lastScaledAt! + delay * 1000,
      ...remembered,
    };
  }
  return { desired: target, reason: formula, retryAt: null, ...remembered };
}

/** The standing decision of a service: its desired count and when the autoscaler last moved it. */
export interface StandingDecision {
  desired: number;
  lastChangeAt: number | null;
  /** Latency metrics: the capacity the last decision remembered (`latency-autoscaler.ts`). */
  capacity?: number | null;
}

export interface EvaluationInput {
  replicas: ServiceConfiguration["replicas"];
  scaling: ServiceConfiguration["scaling"];
  stats: ServiceStats | null;
  /** The last decision; null before the first (the service was just created). */
  standing: StandingDecision | null;
  /** Registered replica endpoints: the starting point of the first decision. */
  registered: number;
  now: number;
}

export interface Evaluation extends ScalingDecision {
  /** The count the decision started from (the standing one, or the registered replicas). */
  baseline: number;
  /** What `last_change_at` becomes: `now` only when the autoscaler itself moved the count. */
  lastChangeAt: number | null;
  /** The capacity to keep for the next decision (latency metrics; null for rps and manual). */
  capacity: number | null;
}

/**
 * One evaluation from the standing decision: the starting point is brought within `min..max` at
 * once, then `decideReplicas` runs. Only a move `decideReplicas` makes starts a delay. Bringing the
 * start within the range (the service's creation, a changed range) is the configuration's doing,
 * not a scaling change: as dstack's pending run (`last_scaled_at=None`), the first scale-up after a
 * service is created is not held by `scale_up_delay`.
 */
export function evaluateScaling(input: EvaluationInput): Evaluation {
  const { min, max } = input.replicas;
  const { standing, registered } = input;
  const baseline = standing?.desired ?? registered;
  const current = clamp(baseline, min, max);
  const decision = decideReplicas({
    replicas: input.replicas,
    scaling: input.scaling,
    stats: input.stats,
    current,
    lastScaledAt: standing?.lastChangeAt ?? null,
    now: input.now,
    capacity: standing?.capacity ?? null,
  });
  const from = standing ? `desired ${baseline}` : `${registered} registered`;
  const reason =
    current !== baseline && decision.desired === current
      ? `${from}, brought within ${min}..${max}; ${decision.reason}`
      : decision.reason;
  const lastChangeAt = decision.desired !== current ? input.now : (standing?.lastChangeAt ?? null);
  // A decision that did not look (no stats) keeps what was remembered.
  const latency = !!input.scaling && input.scaling.metric !== "rps";
  const capacity = latency
    ? decision.capacity !== undefined
      ? decision.capacity
      : (standing?.capacity ?? null)
    : null;
  return { ...decision, reason, baseline, lastChangeAt, capacity };
}
