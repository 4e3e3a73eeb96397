/**
 * @module
 * The rules of plan and apply, as pure functions: what a plan shows (changes, in place or
 * re-create), when an apply is refused and with which words (stale plan, busy or failed gateway,
 * a change that cannot be made in place, a service that would move), and what an accepted apply
 * does. The Worker's routes and the GatewayObject decide with these, and so does the CLI's test
 * double, so the double answers what the control plane answers (same codes and messages; the
 * status follows from the refusal's kind, as `worker/outcomes.ts` maps it). What needs storage
 * (looking gateways up, writing) stays with the caller; these only decide. The busy rule itself
 * is `gateway-busy.ts`.
 */
import {
  diffConfigurations,
  type GatewayConfiguration,
  IN_PLACE_FIELDS,
  isInPlace,
  storedGatewayConfiguration,
} from "./gateway.ts";
import { beingDeletedRefusal, failedRefusal } from "./gateway-busy.ts";
import { sameJson } from "./json.ts";
import type { ConfigurationChange, PlannedResource } from "./plan-envelope.ts";
import { type ServiceConfiguration, storedServiceConfiguration } from "./service.ts";

/**
 * A refusal: what went wrong (`kind`, as the objects' `Failure`), the code clients branch on, the
 * message, and the field at fault. The Worker alone turns the kind into an HTTP status.
 */
export interface Refusal {
  kind: "invalid" | "not_found" | "conflict" | "busy";
  code: string;
  message: string;
  field?: string;
}

/** A refusal to answer with, shaped as a failed `Outcome` (what crosses the object's RPC boundary). */
export type Refused = { ok: false; error: Refusal };
/** A decision: the value to act on, or the refusal to answer with. */
export type Decision<T> = { ok: true; value: T } | Refused;

const refuse = (kind: Refusal["kind"], code: string, message: string, field?: string): Refused => ({
  ok: false,
  error: { kind, code, message, ...(field ? { field } : {}) },
});
const refused = (refusal: Refusal | null): Refused | null => (refusal ? { ok: false, error: refusal } : null);

/** What a plan shows besides the specs: `create` also when the change cannot be made in place. */
export interface PlanSummary {
  action: "create" | "update";
  changes: ConfigurationChange[];
  in_place: boolean;
}

/** The plan's resource changed since (optimistic concurrency): re-plan, or apply with `force`. */
export const STALE_PLAN: Refusal = {
  kind: "conflict",
  code: "conflict",
  message: "Failed to apply plan. Resource has been changed. Try again or use force apply.",
};

/** Whether the resource the client planned against is still the current one. */
export function planIsCurrent<C>(
  planned: PlannedResource | undefined,
  current: { id: string; configuration: C },
  same: (planned: unknown, current: C) => boolean = sameJson,
): boolean {
  return !!planned && planned.id === current.id && same(planned.configuration, current.configuration);
}

// Gateways.

/** What the busy rule needs of a gateway. */
export interface GatewayStanding {
  name: string;
  status: string;
  to_be_deleted: boolean;
}

/** A gateway plan: no current gateway, or a change outside the in-place fields, is a create. */
export function planGateway(current: GatewayConfiguration | null, effective: GatewayConfiguration): PlanSummary {
  const changes = current ? diffConfigurations(current, effective) : [];
  const inPlace = current !== null && isInPlace(changes.map((ch) => ch.field));
  return { action: inPlace ? "update" : "create", changes, in_place: inPlace };
}

/**
 * Compares configurations as a client sees them: `default` is the live flag, so it is left out; a
 * plan made against an older control plane lacks the fields added since (their defaults stand in).
 */
export function sameGatewayConfiguration(planned: unknown, current: GatewayConfiguration): boolean {
  if (!planned || typeof planned !== "object") return false;
  const changes = diffConfigurations(
    { ...storedGatewayConfiguration(planned as GatewayConfiguration), default: null },
    { ...current, default: null, name: current.name },
  );
  return changes.length === 0;
}

/** The stored gateway an apply meets (the caller has checked it belongs to the project). */
export interface CurrentGateway extends GatewayStanding {
  id: string;
  configuration: GatewayConfiguration;
}

export interface GatewayApply {
  configuration: GatewayConfiguration;
  currentResource: PlannedResource | undefined;
  force: boolean;
  recreate: boolean;
}

/**
 * What an apply does to an existing gateway, in the order the checks are made: a gateway being
 * deleted is refused; a stale plan is refused unless forced; a re-create goes ahead (it is how a
 * FAILED gateway is replaced, so that check comes after it); a FAILED gateway is refused; a change
 * outside the in-place fields is refused (the field named is the first that needs a re-create).
 */
export function decideGatewayApply(
  current: CurrentGateway,
  input: GatewayApply,
): Decision<{ kind: "recreate" } | { kind: "update"; changes: ConfigurationChange[] }> {
  const deleting = refused(beingDeletedRefusal(current));
  if (deleting) return deleting;
  if (!input.force && !planIsCurrent(input.currentResource, current, sameGatewayConfiguration)) {
    return { ok: false, error: STALE_PLAN };
  }
  if (input.recreate) return { ok: true, value: { kind: "recreate" } };
  const failed = refused(failedRefusal(current));
  if (failed) return failed;
  const changes = diffConfigurations(current.configuration, input.configuration);
  const fields = changes.map((c) => c.field);
  if (!isInPlace(fields)) {
    const fixed = fields.filter((f) => !(IN_PLACE_FIELDS as readonly string[]).includes(f));
    return refuse(
      "conflict",
      "not_updatable",
      `Gateway ${current.name} cannot be updated in-place (changed: ${fixed.join(", ")}). Re-create it (apply with recreate: true).`,
      fixed[0],
    );
  }
  return { ok: true, value: { kind: "update", changes } };
}

// Services.

export const NO_DEFAULT_GATEWAY = "The service requires a gateway, but there is no default gateway in the project";

/**
 * The gateway a service file points at: its `gateway` (looked up by name), else the project's
 * default (`found` is what the caller's lookup found; `gone`: marked for deletion).
 */
export function serviceGateway(
  configured: string | null | undefined,
  found: { name: string; gone: boolean } | null,
  project: string,
): Decision<string> {
  if (configured) {
    if (!found) return refuse("not_found", "not_found", `Gateway ${configured} does not exist in project ${project}`);
    if (found.gone) return refuse("busy", "being_deleted", `Gateway ${configured} was marked for deletion`, "gateway");
    return { ok: true, value: found.name };
  }
  if (!found || found.gone) return refuse("not_found", "not_found", NO_DEFAULT_GATEWAY);
  return { ok: true, value: found.name };
}

/** The changes a service plan shows: its gateway first, then each field of the new configuration. */
export function serviceChanges(
  current: { gateway: string; configuration: object } | null,
  next: object,
  gateway: string,
): ConfigurationChange[] {
  if (!current) return [];
  const changes: ConfigurationChange[] = [];
  if (current.gateway !== gateway) changes.push({ field: "gateway", from: current.gateway, to: gateway });
  const before = current.configuration as Record<string, unknown>;
  const after = next as Record<string, unknown>;
  for (const field of Object.keys(after)) {
    if (field === "gateway") continue;
    if (JSON.stringify(before[field] ?? null) !== JSON.stringify(after[field] ?? null)) {
      changes.push({ field, from: before[field] ?? null, to: after[field] ?? null });
    }
  }
  return changes;
}

/** A service plan: an update in place unless the service is new or would move to another gateway. */
export function planService(
  current: { gateway: string; configuration: object } | null,
  next: object,
  gateway: string,
): PlanSummary {
  const inPlace = current !== null && current.gateway === gateway;
  return { action: inPlace ? "update" : "create", changes: serviceChanges(current, next, gateway), in_place: inPlace };
}

/** A service is not moved between gateways in place (`serving`: the gateway that serves it now). */
export function serviceMoveRefusal(name: string, serving: string | null, gateway: string): Refused | null {
  if (!serving || serving === gateway) return null;
  return refuse(
    "conflict",
    "not_updatable",
    `Service ${name} is served by gateway ${serving}; delete it and re-apply to move it to ${gateway}`,
    "gateway",
  );
}

/** What a gateway must offer to take service changes (`domain`: its hosts' domain, or null). */
export interface ServiceHost extends GatewayStanding {
  domain: string | null;
  certificate: { type: string } | null;
}

/** A gateway that takes no service changes: being deleted, FAILED, or without a domain. */
export function serviceHostRefusal(g: ServiceHost): Refused | null {
  if (g.to_be_deleted) return refuse("busy", "being_deleted", `Gateway ${g.name} was marked for deletion`);
  if (g.status === "failed") return refuse("busy", "failed", `Gateway ${g.name} is in FAILED status`);
  if (!g.domain) {
    return refuse(
      "invalid",
      "invalid_field",
      `gateway: gateway ${g.name} has no domain; set one with gateplane apply`,
      "gateway",
    );
  }
  return null;
}

/** `https: true` needs a certificate; `https: false` cannot be served behind ACM (TLS ends at the load balancer). */
export function serviceHttpsRefusal(g: ServiceHost, https: boolean | "auto"): Refused | null {
  if (https === true && g.certificate === null) {
    return refuse(
      "invalid",
      "invalid_field",
      `Cannot run HTTPS service on gateway with no SSL certificates configured (gateway ${g.name} has certificate: null); set https: false or auto`,
      "https",
    );
  }
  if (https === false && g.certificate?.type === "acm") {
    return refuse(
      "invalid",
      "invalid_field",
      `Cannot run HTTP service on gateway with ACM certificates configured (gateway ${g.name}); set https: true or auto`,
      "https",
    );
  }
  return null;
}

/** A plan made against an older control plane lacks the service fields added since: their defaults stand in. */
const sameServiceConfiguration = (planned: unknown, current: unknown): boolean =>
  !!planned &&
  typeof planned === "object" &&
  sameJson(
    storedServiceConfiguration(planned as ServiceConfiguration),
    storedServiceConfiguration(current as ServiceConfiguration),
  );

/**
 * What a service apply does on its gateway (after `serviceHostRefusal` and `serviceHttpsRefusal`):
 * a new service is created whatever was planned; an existing one needs a current plan unless
 * forced, and an unchanged configuration changes nothing.
 */
export function decideServiceApply(
  current: { id: string; configuration: unknown } | null,
  input: { configuration: unknown; currentResource: PlannedResource | undefined; force: boolean },
): Decision<"create" | "update" | "unchanged"> {
  if (!current) return { ok: true, value: "create" };
  if (!input.force && !planIsCurrent(input.currentResource, current, sameServiceConfiguration)) {
    return { ok: false, error: STALE_PLAN };
  }
  return { ok: true, value: sameJson(current.configuration, input.configuration) ? "unchanged" : "update" };
}
