/**
 * @module
 * A service's history as the API shows it (`GET /projects/:p/services/:name/metrics?range=1h|1d`),
 * for the console's charts, the CLI and any other tool: points of requests, errors, TTFT and ITL
 * percentiles, tokens and replicas over the last hour (1-minute steps) or day (5-minute steps), and
 * the autoscaler's decisions in that time. Each gateway's object keeps the 1-minute rollups
 * (`durable-objects/service-history.ts`); a step of several minutes merges their histograms before
 * any percentile is taken.
 */
import * as v from "valibot";
import { REPLICA_ROLES } from "./service-scaling.ts";

export const METRICS_RANGES = { "1h": { seconds: 3600, step: 60 }, "1d": { seconds: 86_400, step: 300 } } as const;
export type MetricsRange = keyof typeof METRICS_RANGES;
export const MetricsRangeParam = v.picklist(Object.keys(METRICS_RANGES) as MetricsRange[]);

const Quantiles = v.object({ p50: v.nullable(v.number()), p90: v.nullable(v.number()) });

export const MetricsPointSchema = v.object({
  /** The start of the step (ISO 8601). */
  t: v.string(),
  requests_per_second: v.number(),
  /** `errors / requests`; null without requests. */
  error_rate: v.nullable(v.number()),
  /** Seconds. */
  ttft: Quantiles,
  itl: Quantiles,
  tokens_per_second: v.object({ input: v.number(), output: v.number() }),
  /** The autoscaler's desired count (null without `scaling`) and the registered replicas, at the step's end. */
  replicas: v.object({ desired: v.nullable(v.number()), registered: v.number() }),
  /** How many gateway replicas' reports the step holds (0: the step had reports but no fresh one). */
  reporting: v.number(),
});
export type MetricsPoint = v.InferOutput<typeof MetricsPointSchema>;

export const ScalingDecisionSchema = v.object({
  at: v.string(),
  /** A PD service scaled per role: the role the decision is for (`from`/`to` are its counts); absent otherwise. */
  role: v.optional(v.picklist(REPLICA_ROLES)),
  from: v.nullable(v.number()),
  to: v.number(),
  reason: v.string(),
});
export type ScalingDecision = v.InferOutput<typeof ScalingDecisionSchema>;

export const ServiceMetricsSchema = v.object({
  service: v.string(),
  gateway: v.string(),
  range: MetricsRangeParam,
  step_seconds: v.number(),
  /** Oldest first; a step without any report is left out (a gap). */
  points: v.array(MetricsPointSchema),
  /** `service.scaling` events in the range, oldest first. */
  decisions: v.array(ScalingDecisionSchema),
});
export type ServiceMetrics = v.InferOutput<typeof ServiceMetricsSchema>;
