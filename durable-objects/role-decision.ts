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
export function decideRole(input: RoleInput): Evaluation & { registered: number; stored: string | null } {
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
  return { ...decision, registered, stored: storedCapacity(key, decision.capacity) };
}
