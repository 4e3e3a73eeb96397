/**
 * @module
 * The envelope every plan and apply carries, for gateways and services alike: the configuration file
 * as the client read it (`spec`: `{configuration, configuration_path}`) and the resource the client
 * planned against (`current_resource`, the optimistic-concurrency check of an apply). Defined once
 * here; the Worker validates requests with it, the CLI and its test double type their bodies from it,
 * and the GatewayObject's inputs carry the same `PlannedResource`.
 */
import * as v from "valibot";
import { describeType, isMapping, mapping } from "./issues.ts";
import { text } from "./text.ts";

export type ResourceKind = "gateway" | "service";

/** A configuration file as a client sends it: validated afterwards by the kind's own parser. */
export const specInput = (kind: ResourceKind) =>
  mapping({
    configuration: v.pipe(
      v.custom<Record<string, unknown>>(
        isMapping,
        (issue) => `expected the ${kind} configuration as a mapping, got ${describeType(issue.input)}`,
      ),
      v.record(v.string(), v.unknown()),
    ),
    /** As the user wrote it (shown in plans); absent or null when the file has no path. */
    configuration_path: v.optional(v.nullable(text())),
  });
export type SpecInput = v.InferOutput<ReturnType<typeof specInput>>;

/**
 * The resource the client planned against (its plan's `current_resource`); `null` when it planned a
 * create. Only `id` and `configuration` are compared, so the rest of the resource may ride along.
 */
export const PlannedResource = v.nullable(v.looseObject({ id: v.string(), configuration: v.unknown() }));
export type PlannedResource = v.InferOutput<typeof PlannedResource>;

/** The body of `POST …/plan`. */
export const planRequest = (kind: ResourceKind) => mapping({ spec: specInput(kind) });

/** The `plan` of `POST …/apply`: what was planned, and against which resource. */
export const plannedApply = (kind: ResourceKind) =>
  mapping({ spec: specInput(kind), current_resource: v.optional(PlannedResource) });

/** The spec as a plan echoes it: `configuration_path` always present (null without a path). */
export const SpecEcho = v.object({
  configuration: v.record(v.string(), v.unknown()),
  configuration_path: v.nullable(v.string()),
});
/** What a client sends as `spec` (the CLI always names the path, or null). */
export type Spec = v.InferOutput<typeof SpecEcho>;

/** The `plan` a client sends back to apply: its spec and the resource its plan showed (typed by kind). */
export interface PlanToApply<R extends { id: string; configuration: unknown }> {
  spec: Spec;
  current_resource: R | null;
}

/** The spec with its configuration validated and defaults applied (the plan's `effective_spec`). */
export const effectiveSpec = <S extends v.GenericSchema>(configuration: S) =>
  v.object({ configuration, configuration_path: v.nullable(v.string()) });

/** One changed field of a plan (`from` the current resource, `to` the planned configuration). */
export const ConfigurationChangeSchema = v.object({ field: v.string(), from: v.unknown(), to: v.unknown() });
export type ConfigurationChange = v.InferOutput<typeof ConfigurationChangeSchema>;

/** Echoes a request's spec in a plan, `configuration_path` filled in. */
export const echoSpec = (spec: SpecInput): Spec => ({
  configuration: spec.configuration,
  configuration_path: spec.configuration_path ?? null,
});
