/**
 * @module
 * What the co-located (`scaling.ts`) and the per-role (`role-scaling.ts`) decisions share about a
 * standing decision's row: when it is due for another look, and the capacity it remembers. Pure
 * (no storage types), so node tests import it.
 */
import type { ServiceConfiguration } from "../schema/service.ts";

export const FROM_ZERO_REASON = "request while scaled to zero";

export interface EvaluateOptions {
  now: number;
  /** Ignore the per-service interval (the configuration changed). */
  force?: boolean;
}

/** Agents report every 5 s each; deciding more often per service would only repeat itself. */
export const EVALUATE_INTERVAL_MS = 5_000;

/** What a standing decision's row says of its last look (`service-store.ts`'s `ScalingRow`). */
export interface Looked {
  last_evaluated_at: number;
  /** When a change held back by a delay may go through. */
  next_evaluation_at: number | null;
}

/** Whether a standing decision is due for another look. */
export function due(row: Looked | null, now: number): boolean {
  if (!row) return true;
  if (row.next_evaluation_at !== null && row.next_evaluation_at <= now) return true;
  return now - row.last_evaluated_at >= EVALUATE_INTERVAL_MS;
}

/**
 * What a remembered capacity was measured against: a capacity learned for another metric or target
 * says nothing about this one, so a changed configuration starts without one.
 */
export const capacityKey = (scaling: NonNullable<ServiceConfiguration["scaling"]>) =>
  `${scaling.metric} ${scaling.target}`;

export function readCapacity(stored: string | null | undefined, key: string): number | null {
  if (!stored) return null;
  try {
    const c = JSON.parse(stored) as { for?: unknown; rps?: unknown };
    return c.for === key && typeof c.rps === "number" && Number.isFinite(c.rps) && c.rps > 0 ? c.rps : null;
  } catch {
    return null;
  }
}

/** The JSON the row keeps for a capacity (null: none). */
export const storedCapacity = (key: string, rps: number | null): string | null =>
  rps === null ? null : JSON.stringify({ for: key, rps });
