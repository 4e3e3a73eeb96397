/**
 * @module
 * One role's autoscaling decision for a PD service with replica groups, pure: the rule a co-located
 * service scales by (`autoscaler.ts`) on the role's range, scaling and stats (`role-stats.ts`).
 * `role-scaling.ts` stores it and emits its event.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { EngineSignals } from "../schema/engine.ts";
import type { ReplicaGroup, ReplicaRole } from "../schema/service.ts";
import { type Evaluation, evaluateScaling } from "./autoscaler.ts";
import { roleStats } from "./role-stats.ts";
import { capacityKey, readCapacity, storedCapacity } from "./scaling-row.ts";

export interface RoleInput {
  group: ReplicaGroup;
  /** The service's stats summed over running gateway replicas (null: not all reported). */
  stats: ServiceStats | null;
  /** The service's replicas' freshest engine signals (`engineSignals`). */
  engines: readonly EngineSignals[] | null;
  /** The registered service replicas, with their roles. */
  replicas: readonly { id: string; role?: ReplicaRole | null }[];
  /** The role's standing decision (its row); null before the first. */
  standing: { desired_replicas: number; last_change_at: number | null; capacity?: string | null } | null;
  now: number;
}

/**
 * One role's decision, pure: the co-located rule (`evaluateScaling`) on the role's range, scaling and
 * stats, from its standing decision (or its registered replicas before the first). `stored`: the
 * remembered capacity as the row keeps it.
 */
export interface RoleDecision extends Evaluation {
  /** The role's registered replicas. */
  registered: number;
  /** The count the decision started from, within the role's range. */
  current: number;
  stored: string | null;
}

export function decideRole(input: RoleInput): RoleDecision {
  const { group: g, standing: row } = input;
  const registered = input.replicas.filter((r) => r.role === g.name).length;
  const key = g.scaling ? capacityKey(g.scaling) : "";
  const decision = evaluateScaling({
    replicas: g.count,
    scaling: g.scaling,
    stats: roleStats(g.name, input.stats, input.engines, input.replicas),
    standing: row
      ? { desired: row.desired_replicas, lastChangeAt: row.last_change_at, capacity: readCapacity(row.capacity, key) }
      : null,
    registered,
    now: input.now,
  });
  const current = Math.min(Math.max(decision.baseline, g.count.min), g.count.max);
  return { ...decision, registered, current, stored: storedCapacity(key, decision.capacity) };
}

/**
 * A PD service reaches zero with both roles at once: one role alone at zero cannot serve, and the
 * proxy holds requests (and asks for replicas) only while the service has no replica at all. So a
 * role whose decision is 0 while the other role stays above (`otherWants`: the other's decision this
 * turn, else its standing count) holds its count, as if no change were due (its delay keeps running
 * from `lastChangeAt`); both go together on the turn both want 0.
 */
export function holdAboveZero(
  d: RoleDecision,
  other: ReplicaRole,
  otherWants: number,
  lastChangeAt: number | null,
): RoleDecision {
  if (d.desired !== 0 || d.current === 0 || otherWants === 0) return d;
  return {
    ...d,
    desired: d.current,
    lastChangeAt,
    retryAt: null,
    reason: `${d.reason}; holding ${d.current}: ${other} stays at ${otherWants} (both roles reach zero together)`,
  };
}
