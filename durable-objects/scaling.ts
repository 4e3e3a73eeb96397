/**
 * @module
 * Autoscaling inside a GatewayObject: runs the decision (`autoscaler.ts`) for a service, records it in
 * the object's storage and emits `service.scaling` when the desired count changes. Also the scale-up
 * a proxy asks for when a request arrives for a service scaled to zero. All synchronous: called
 * between two awaits, a decision and its event commit together.
 */
import { evaluateScaling } from "./autoscaler.ts";
import { evaluateRoles, requestWhileZeroRoles } from "./role-scaling.ts";
import {
  capacityKey,
  due,
  type EvaluateOptions,
  FROM_ZERO_REASON,
  readCapacity,
  storedCapacity,
} from "./scaling-row.ts";
import { aggregateStats } from "./service-stats.ts";
import type { ScalingRow, ServiceRow, ServiceStore } from "./service-store.ts";
import type { GatewayState, ReplicaRow } from "./state.ts";

export { EVALUATE_INTERVAL_MS, type EvaluateOptions, FROM_ZERO_REASON } from "./scaling-row.ts";

/**
 * Decides for one service with `scaling` (others have their row dropped), or per role for a PD
 * service with replica groups (`role-scaling.ts`). `running` are the gateway's running replicas,
 * whose stats are summed. Returns whether a desired count changed.
 */
export function evaluateService(
  state: GatewayState,
  store: ServiceStore,
  s: ServiceRow,
  running: ReplicaRow[],
  options: EvaluateOptions,
): boolean {
  // Both run: each drops its rows when the configuration moved to the other form.
  const roles = evaluateRoles(state, store, s, running, options);
  return evaluateColocated(state, store, s, running, options) || roles;
}

function evaluateColocated(
  state: GatewayState,
  store: ServiceStore,
  s: ServiceRow,
  running: ReplicaRow[],
  options: EvaluateOptions,
): boolean {
  const c = s.configuration;
  const previous = store.scaling(s.name);
  if (!c.scaling) {
    if (previous) store.removeScaling(s.name);
    return false;
  }
  const { now } = options;
  if (!options.force && !due(previous, now)) return false;
  const registered = store.replicas(s.name).length;
  const key = capacityKey(c.scaling);
  const decision = evaluateScaling({
    replicas: c.replicas,
    scaling: c.scaling,
    stats: aggregateStats(s.name, running, now),
    standing: previous
      ? {
          desired: previous.desired_replicas,
          lastChangeAt: previous.last_change_at,
          capacity: readCapacity(previous.capacity, key),
        }
      : null,
    registered,
    now,
  });
  return record(state, store, s.name, previous, decision.baseline, registered, decision.desired, decision.reason, {
    now,
    lastChangeAt: decision.lastChangeAt,
    retryAt: decision.retryAt,
    capacity: storedCapacity(key, decision.capacity),
  });
}

/**
 * Evaluates every service that is due. `changed`: some desired count changed (an event waits for
 * D1); `next`: the earliest time a held decision wants another look.
 */
export function evaluateAll(
  state: GatewayState,
  store: ServiceStore,
  replicas: ReplicaRow[],
  options: EvaluateOptions,
): { changed: boolean; next: number | null } {
  const running = replicas.filter((r) => r.status === "running");
  let changed = false;
  for (const s of store.list()) changed = evaluateService(state, store, s, running, options) || changed;
  return { changed, next: store.nextScalingEvaluation() };
}

/**
 * A proxy holds a request for `service`, which has no replica: desired becomes max(1, min) at once
 * (for a PD service with replica groups: both roles at once, `role-scaling.ts`).
 * Idempotent: nothing changes while the desired count is already at least 1, or when the service
 * does not scale to zero. Returns whether the decision changed.
 */
export function requestWhileZero(state: GatewayState, store: ServiceStore, s: ServiceRow, now: number): boolean {
  const c = s.configuration;
  if (c.replicas.groups) return requestWhileZeroRoles(state, store, s, now);
  if (!c.scaling || c.replicas.min !== 0) return false;
  const previous = store.scaling(s.name);
  const registered = store.replicas(s.name).length;
  const current = previous?.desired_replicas ?? registered;
  if (current >= 1) return false;
  const desired = Math.max(1, c.replicas.min);
  // Up from zero is the autoscaler's move: a further scale-up waits its delay from here.
  return record(state, store, s.name, previous, current, registered, desired, FROM_ZERO_REASON, {
    now,
    lastChangeAt: now,
    retryAt: null,
    capacity: previous?.capacity ?? null,
  });
}

function record(
  state: GatewayState,
  store: ServiceStore,
  service: string,
  previous: ScalingRow | null,
  current: number,
  registered: number,
  desired: number,
  reason: string,
  when: { now: number; lastChangeAt: number | null; retryAt: number | null; capacity: string | null },
): boolean {
  const { now, retryAt } = when;
  const changed = desired !== current;
  store.putScaling({
    service,
    desired_replicas: desired,
    reason,
    last_change_at: when.lastChangeAt,
    last_evaluated_at: now,
    next_evaluation_at: retryAt,
    capacity: when.capacity,
  });
  if (!changed) return false;
  state.event(`Service ${service} scaling: ${current} -> ${desired} replicas (${reason})`, null, {
    type: "service.scaling",
    data: {
      service,
      desired_replicas: desired,
      previous_desired_replicas: previous?.desired_replicas ?? null,
      current_replicas: registered,
      reason,
    },
  });
  return true;
}
