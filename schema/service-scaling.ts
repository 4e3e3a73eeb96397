/**
 * @module
 * A service's replica count and autoscaling (`replicas:`, `scaling:`), split from `service.ts`.
 * `replicas` is a count, a `min..max` range, or — on a PD service (`router.pd_disaggregation: true`)
 * — dstack's list of replica groups (dstack ≥ 0.20.17's `ReplicaGroup`: `name`, `count`,
 * `scaling`), one per role: `[{name: prefill, count: 1..4, scaling: {metric: ttft, …}},
 * {name: decode, count: 1..8, scaling: {metric: itl, …}}]`. Parsed groups keep the range form
 * everywhere else reads (`replicas.min`/`max`: the sums over the groups) and add `replicas.groups`;
 * a count or a range parses exactly as before (no `groups` key).
 */
import * as v from "valibot";
import { describeType, expected, type FieldIssue, mapping, oneOf } from "./issues.ts";
import * as L from "./limits.ts";
import { duration } from "./units.ts";

export const SCALING_WINDOWS = [30, 60, 300] as const;
/** How long the proxy holds a request for a service scaled to zero (`scaling.hold_timeout`). */
export const DEFAULT_HOLD_TIMEOUT_SECONDS = 60;

/** A replica's role under prefill/decode disaggregation (`router.pd_disaggregation`); absent: co-located. */
export const REPLICA_ROLES = ["prefill", "decode"] as const;
export type ReplicaRole = (typeof REPLICA_ROLES)[number];

/**
 * `scaling.metric`: dstack's `rps`, and gateplane's latency metrics (`durable-objects/autoscaler.ts`
 * has the rule): `ttft` and `itl` (target: a p90 in seconds over the window), `queue` (target: the
 * mean of the engines' waiting requests per replica over the window).
 */
export const SCALING_METRICS = ["rps", "ttft", "itl", "queue"] as const;
export type ScalingMetric = (typeof SCALING_METRICS)[number];

/** What `target` counts for each metric, as errors and reasons spell it. */
export const SCALING_TARGET_UNITS: Record<ScalingMetric, string> = {
  rps: "requests per second per replica",
  ttft: "seconds (p90 time to first token)",
  itl: "seconds (p90 inter-token latency)",
  queue: "waiting requests per replica",
};

const ScalingFields = mapping({
  metric: v.picklist(SCALING_METRICS, oneOf(SCALING_METRICS)),
  target: v.pipe(
    v.number(expected("a number")),
    v.finite(expected("a number")),
    v.gtValue(0, "must be greater than 0"),
    v.maxValue(L.MAX_SCALING_TARGET, `must be at most ${L.MAX_SCALING_TARGET}`),
  ),
  window: v.optional(
    v.pipe(
      duration(30, 300, "a window"),
      v.check(
        (s) => (SCALING_WINDOWS as readonly number[]).includes(s),
        (issue) => `expected one of 30s, 60s, 300s, got ${describeType(issue.input)}`,
      ),
    ),
    60,
  ),
  scale_up_delay: v.optional(duration(0, L.MAX_SCALING_DELAY_SECONDS, "a delay"), 300),
  scale_down_delay: v.optional(duration(0, L.MAX_SCALING_DELAY_SECONDS, "a delay"), 600),
  /**
   * Gateplane's own: with `replicas: 0..N`, a request arriving while no replica is registered is held
   * this long for one to register (dstack answers 503 at once).
   */
  hold_timeout: v.optional(
    duration(L.MIN_HOLD_TIMEOUT_SECONDS, L.MAX_HOLD_TIMEOUT_SECONDS, "a timeout"),
    DEFAULT_HOLD_TIMEOUT_SECONDS,
  ),
});

/** The target's bounds depend on the metric (`limits.ts`); the error names `scaling.target`. */
export const Scaling = v.pipe(
  ScalingFields,
  v.forward(
    v.check(
      (s) => s.target >= L.SCALING_TARGET_LIMITS[s.metric].min && s.target <= L.SCALING_TARGET_LIMITS[s.metric].max,
      (issue) => {
        const { metric, target } = issue.input as { metric: ScalingMetric; target: number };
        const { min, max } = L.SCALING_TARGET_LIMITS[metric];
        return `expected ${SCALING_TARGET_UNITS[metric]} ${min > 0 ? `from ${min}` : "above 0"} to ${max} for metric ${metric}, got ${target}`;
      },
    ),
    ["target"],
  ),
);

/** `replicas`: a count or a `min..max` range, as dstack (`..4` is `0..4`; the maximum is required). */
const ReplicaCount = v.pipe(
  v.union([v.number(), v.string()], expected("a count or a range such as 0..4")),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    const text = String(value).trim();
    if (/^\d*\s*\.\.\s*$/.test(text)) {
      addIssue({ message: `the maximum number of replicas is required (e.g. 0..4), got ${describeType(value)}` });
      return NEVER;
    }
    const m = text.match(/^(?:(\d+)|(\d*)\s*\.\.\s*(\d+))$/);
    const min = m ? Number(m[1] ?? (m[2] || "0")) : Number.NaN;
    const max = m ? Number(m[1] ?? m[3]) : Number.NaN;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min || max > L.MAX_SERVICE_REPLICAS) {
      addIssue({
        message: `expected a count or a range min..max with 0 ≤ min ≤ max ≤ ${L.MAX_SERVICE_REPLICAS}, got ${describeType(value)}`,
      });
      return NEVER;
    }
    return { min, max };
  }),
);

/**
 * The metrics each role may scale on. TTFT is the prefill side's signal (the time to first token of
 * a PD request is dominated by its prefill), ITL the decode side's; `queue` reads the engines of the
 * role's own replicas, and `rps` counts the service's requests, every one of which passes both roles.
 */
export const ROLE_SCALING_METRICS: Record<ReplicaRole, readonly ScalingMetric[]> = {
  prefill: ["ttft", "queue", "rps"],
  decode: ["itl", "queue", "rps"],
};

const ReplicaGroupFields = mapping(
  {
    name: v.picklist(REPLICA_ROLES, oneOf(REPLICA_ROLES)),
    count: ReplicaCount,
    scaling: v.optional(v.nullable(Scaling), null),
  },
  "a mapping with name, count and scaling",
);
export type ReplicaGroup = v.InferOutput<typeof ReplicaGroupFields>;

export interface ReplicaRange {
  min: number;
  max: number;
  /** PD services declared per role (a list of groups); absent for a count or a range. */
  groups?: ReplicaGroup[];
}

/** `replicas`: a count, a range, or a list of replica groups (errors keep their `[i].field` path). */
export const Replicas = v.pipe(
  v.unknown(),
  v.rawTransform(({ dataset, addIssue, NEVER }): ReplicaRange => {
    const value = dataset.value;
    if (!Array.isArray(value)) {
      const range = v.safeParse(ReplicaCount, value);
      if (range.success) return range.output;
      addIssue({ message: range.issues[0].message });
      return NEVER;
    }
    const parsed = v.safeParse(
      v.pipe(
        v.array(ReplicaGroupFields, expected("a list of replica groups")),
        v.minLength(1, "expected at least one replica group"),
      ),
      value,
    );
    if (!parsed.success) {
      for (const issue of parsed.issues) {
        const path = issue.path as [v.IssuePathItem, ...v.IssuePathItem[]] | undefined;
        addIssue({ message: issue.message, ...(path ? { path } : {}) });
      }
      return NEVER;
    }
    const groups = parsed.output;
    return {
      min: groups.reduce((n, g) => n + g.count.min, 0),
      max: groups.reduce((n, g) => n + g.count.max, 0),
      groups,
    };
  }),
);

/**
 * The cross-field rules of replica groups (`parseServiceConfiguration` runs them): a list only on a
 * PD service, one group per role (both), a top-level `scaling` refused (each group has its own),
 * dstack's range ⇔ scaling rule per group, a metric the role may scale on, and a role scales to zero
 * only with the other (a PD service with one role at zero cannot serve, and the proxy holds requests
 * only for a service with no replica at all).
 */
export function replicaGroupIssues(c: {
  replicas: ReplicaRange;
  scaling?: unknown;
  router?: { pd_disaggregation?: boolean } | null;
}): FieldIssue[] {
  const groups = c.replicas.groups;
  if (!groups) return [];
  const issues: FieldIssue[] = [];
  if (c.router?.pd_disaggregation !== true) {
    issues.push({
      path: ["replicas"],
      message: "a list of replica groups applies to PD services only (router: {type: sglang, pd_disaggregation: true})",
    });
    return issues;
  }
  if (c.scaling)
    issues.push({ path: ["scaling"], message: "set per replica group (replicas[].scaling) when replicas is a list" });
  groups.forEach((g, i) => {
    if (groups.findIndex((x) => x.name === g.name) !== i)
      issues.push({ path: ["replicas", i, "name"], message: `${g.name} is declared more than once` });
  });
  for (const role of REPLICA_ROLES) {
    if (!groups.some((g) => g.name === role))
      issues.push({
        path: ["replicas"],
        message: `expected a group for each role (prefill and decode), ${role} is missing`,
      });
  }
  groups.forEach((g, i) => {
    const ranged = g.count.min !== g.count.max;
    if (ranged && !g.scaling)
      issues.push({ path: ["replicas", i, "scaling"], message: "required when count is a range (min..max)" });
    if (!ranged && g.scaling)
      issues.push({ path: ["replicas", i, "count"], message: "must be a range min..max when scaling is set" });
    const allowed = ROLE_SCALING_METRICS[g.name];
    if (g.scaling && !allowed.includes(g.scaling.metric))
      issues.push({
        path: ["replicas", i, "scaling", "metric"],
        message: `expected one of ${allowed.join(", ")} for the ${g.name} role, got ${g.scaling.metric}`,
      });
  });
  const zero = groups.filter((g) => g.count.min === 0);
  if (zero.length > 0 && zero.length < groups.length) {
    const i = groups.indexOf(zero[0]!);
    issues.push({
      path: ["replicas", i, "count"],
      message: "a role scales to zero only with the other: both counts start at 0, or neither",
    });
  }
  return issues;
}

/**
 * How long the proxy holds a request while the service has no replica, in seconds; null when it does
 * not scale to zero. With groups: every role starts at 0 (the rule above) and the longest hold wins.
 */
export function holdTimeoutSeconds(c: {
  replicas: ReplicaRange;
  scaling?: { hold_timeout: number } | null;
}): number | null {
  if (c.replicas.min !== 0) return null;
  if (c.replicas.groups) {
    const holds = c.replicas.groups.flatMap((g) => (g.scaling ? [g.scaling.hold_timeout] : []));
    return holds.length > 0 ? Math.max(...holds) : null;
  }
  return c.scaling ? c.scaling.hold_timeout : null;
}
