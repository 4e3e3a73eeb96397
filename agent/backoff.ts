/**
 * @module
 * Waiting between retries: exponential back-off with jitter (so a fleet of agents that lost the
 * control plane together does not come back in lock-step) and sleeps that end early on shutdown.
 */
import { setTimeout as sleepTimer } from "node:timers/promises";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000 };

/** Delay before retry number `attempt` (0-based): uniformly in [½·d, d] with d = initial·2^attempt, capped. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await sleepTimer(Math.max(0, ms), undefined, { signal });
  } catch {
    // Aborted: the caller checks the signal.
  }
}
