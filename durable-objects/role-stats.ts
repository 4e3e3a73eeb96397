/**
 * @module
 * The stats one role of a PD service scales on, derived from what the control plane already
 * receives (the agent protocol is unchanged). Pure.
 *
 * - Requests (`rps`, idle, from zero): the service's. Every PD request passes one replica of each
 *   role, so both roles see the same request count.
 * - `ttft` (prefill) and `itl` (decode): the service's histograms, which the proxy measures on the PD
 *   path end to end. Time to first token is dominated by the prefill (the decode side's first token
 *   follows the KV transfer at once), inter-token latency is decode's alone; so TTFT stands for the
 *   prefill side and ITL for the decode side. The schema lets each role scale only on its own
 *   (`ROLE_SCALING_METRICS`).
 * - `queue`: the engines' waiting requests of the role's own replicas, from the freshest engine
 *   signals (per replica, with its id; ids map to roles through the registered replicas): the mean
 *   per replica at the last scrape, not a mean over the window (the windowed queue samples the agent
 *   reports are per service and mix both roles). Only `fresh` reads count; none → no signal (hold).
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { EngineSignals } from "../schema/engine.ts";
import { LLM_WINDOWS } from "../schema/llm-stats.ts";
import type { ReplicaRole } from "../schema/service.ts";
import { emptyLlmWindow } from "../schema/traffic.ts";

/** The role's replicas' waiting requests at their last fresh read; null when none was read. */
export function roleQueue(
  role: ReplicaRole,
  engines: readonly EngineSignals[] | null,
  replicas: readonly { id: string; role?: ReplicaRole | null }[],
): { waiting: number; samples: number } | null {
  const ids = new Set(replicas.filter((r) => r.role === role).map((r) => r.id));
  let waiting = 0;
  let samples = 0;
  for (const e of engines ?? []) {
    if (!ids.has(e.replica) || e.state !== "fresh" || e.waiting === null) continue;
    waiting += e.waiting;
    samples += 1;
  }
  return samples > 0 ? { waiting, samples } : null;
}

/**
 * The service's windows as one role sees them: the same requests and latency histograms, the queue
 * replaced by the role's own (`roleQueue`, the same reading in every window). Null stays null (not
 * every running gateway replica reported: no decision).
 */
export function roleStats(
  role: ReplicaRole,
  stats: ServiceStats | null,
  engines: readonly EngineSignals[] | null,
  replicas: readonly { id: string; role?: ReplicaRole | null }[],
): ServiceStats | null {
  if (!stats) return null;
  const queue = roleQueue(role, engines, replicas);
  const windows = { ...stats.windows };
  for (const w of LLM_WINDOWS) {
    const { llm, ...rest } = stats.windows[w];
    const { queue: _service, ...latency } = llm ?? emptyLlmWindow();
    windows[w] = queue ? { ...rest, llm: { ...latency, queue } } : llm ? { ...rest, llm: latency } : rest;
  }
  return { service: stats.service, windows };
}
