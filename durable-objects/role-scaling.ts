/**
 * @module
 * Autoscaling per role of a PD service whose `replicas` is a list of groups (prefill, decode): each
 * role has its own standing decision (`service_role_scaling`: desired count, reason, delays,
 * remembered capacity) taken by the same rule as a co-located service (`autoscaler.ts`), on the
 * stats that role scales on (`role-stats.ts`), and its own `service.scaling` event (data with
 * `role`). Scale-from-zero raises both roles at once. Synchronous, as `scaling.ts`.
 */
import type { ReplicaGroup, ReplicaRole } from "../schema/service.ts";
import { decideRole, holdAboveZero } from "./role-decision.ts";
import { due, type EvaluateOptions, FROM_ZERO_REASON } from "./scaling-row.ts";
import { aggregateStats, engineSignals } from "./service-stats.ts";
import type { RoleScalingRow, ServiceRow, ServiceStore } from "./service-store.ts";
import type { GatewayState, ReplicaRow } from "./state.ts";

/** The groups that take decisions: all of them once one scales (a fixed role shows `manual`), else none. */
function decidingGroups(s: ServiceRow): ReplicaGroup[] {
  const groups = s.configuration.replicas.groups ?? [];
  return groups.some((g) => g.scaling) ? groups : [];
}

const registeredOf = (store: ServiceStore, service: string, role: ReplicaRole) =>
  store.replicas(service).filter((r) => r.role === role).length;

/**
 * Decides for each role of a PD service with replica groups that is due; a service without them has
 * its role rows dropped. Returns whether a desired count changed.
 */
export function evaluateRoles(
  state: GatewayState,
  store: ServiceStore,
  s: ServiceRow,
  running: ReplicaRow[],
  options: EvaluateOptions,
): boolean {
  const groups = decidingGroups(s);
  const rows = store.roleScaling(s.name);
  if (groups.length === 0) {
    if (rows.length > 0) store.removeRoleScaling(s.name);
    return false;
  }
  const { now } = options;
  const previous = (role: ReplicaRole) => rows.find((r) => r.role === role) ?? null;
  const todo = groups.filter((g) => options.force || due(previous(g.name), now));
  if (todo.length === 0) return false;
  const stats = aggregateStats(s.name, running, now);
  const engines = engineSignals(s.name, running, now);
  const replicas = store.replicas(s.name);
  const decided = todo.map((g) => ({
    g,
    row: previous(g.name),
    d: decideRole({ group: g, stats, engines, replicas, standing: previous(g.name), now }),
  }));
  const wants = (role: ReplicaRole) =>
    decided.find((x) => x.g.name === role)?.d.desired ??
    previous(role)?.desired_replicas ??
    replicas.filter((r) => r.role === role).length;
  let changed = false;
  for (const { g, row, d: raw } of decided) {
    const other = g.name === "prefill" ? "decode" : "prefill";
    const d = holdAboveZero(raw, other, wants(other), row?.last_change_at ?? null);
    changed =
      record(state, store, s.name, g.name, row, d.baseline, d.registered, d.desired, d.reason, {
        now,
        lastChangeAt: d.lastChangeAt,
        retryAt: d.retryAt,
        capacity: d.stored,
      }) || changed;
  }
  return changed;
}

/**
 * A proxy holds a request for a PD service with no replica: every role below 1 goes to max(1, min)
 * at once, both in the same turn (one role alone cannot serve). Only for a service whose roles
 * scale to zero (the schema makes that both or neither). Returns whether a decision changed.
 */
export function requestWhileZeroRoles(state: GatewayState, store: ServiceStore, s: ServiceRow, now: number): boolean {
  const groups = decidingGroups(s);
  if (groups.length === 0 || s.configuration.replicas.min !== 0) return false;
  const rows = store.roleScaling(s.name);
  let changed = false;
  for (const g of groups) {
    const row = rows.find((r) => r.role === g.name) ?? null;
    const registered = registeredOf(store, s.name, g.name);
    const current = row?.desired_replicas ?? registered;
    if (current >= 1) continue;
    changed =
      record(state, store, s.name, g.name, row, current, registered, Math.max(1, g.count.min), FROM_ZERO_REASON, {
        now,
        // Up from zero is the autoscaler's move: a further scale-up waits its delay from here.
        lastChangeAt: now,
        retryAt: null,
        capacity: row?.capacity ?? null,
      }) || changed;
  }
  return changed;
}

function record(
  state: GatewayState,
  store: ServiceStore,
  service: string,
  role: ReplicaRole,
  previous: RoleScalingRow | null,
  current: number,
  registered: number,
  desired: number,
  reason: string,
  when: { now: number; lastChangeAt: number | null; retryAt: number | null; capacity: string | null },
): boolean {
  store.putRoleScaling({
    service,
    role,
    desired_replicas: desired,
    reason,
    last_change_at: when.lastChangeAt,
    last_evaluated_at: when.now,
    next_evaluation_at: when.retryAt,
    capacity: when.capacity,
  });
  if (desired === current) return false;
  state.event(`Service ${service} scaling: ${role} ${current} -> ${desired} replicas (${reason})`, null, {
    type: "service.scaling",
    data: {
      service,
      role,
      desired_replicas: desired,
      previous_desired_replicas: previous?.desired_replicas ?? null,
      current_replicas: registered,
      reason,
    },
  });
  return true;
}

/**
 * What the autoscaler wants in all for a service: the co-located decision, or the sum of both roles'
 * (null until both decided, or without autoscaling). The per-minute history records it.
 */
export function desiredTotal(store: ServiceStore, service: string): number | null {
  const colocated = store.scaling(service);
  if (colocated) return colocated.desired_replicas;
  const roles = store.roleScaling(service);
  return roles.length === 2 ? roles[0]!.desired_replicas + roles[1]!.desired_replicas : null;
}
