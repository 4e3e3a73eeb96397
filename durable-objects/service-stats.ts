/**
 * @module
 * A service's traffic as the API and the autoscaler see it: the windows every running gateway
 * replica reported, summed.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { ReplicaRow } from "./state.ts";

const STATS_WINDOWS = ["30", "60", "300"] as const;
/**
 * Agents report every 5 s; a report older than this is as good as none (a replica whose agent lost
 * the socket keeps running, and its last windows would otherwise freeze the autoscaler's view).
 */
export const STATS_MAX_AGE_MS = 60_000;

/**
 * Sums traffic over running gateway replicas (request-weighted mean time); null if one has not
 * reported, or not within {@link STATS_MAX_AGE_MS} of `now`.
 */
export function aggregateStats(service: string, running: ReplicaRow[], now = Date.now()): ServiceStats | null {
  if (running.length === 0) return null;
  const out: ServiceStats = {
    service,
    windows: {
      "30": { requests: 0, request_time: 0 },
      "60": { requests: 0, request_time: 0 },
      "300": { requests: 0, request_time: 0 },
    },
  };
  for (const r of running) {
    if (!r.stats || r.stats_at === null || now - r.stats_at > STATS_MAX_AGE_MS) return null;
    const reported = (JSON.parse(r.stats) as ServiceStats[]).find((s) => s.service === service);
    for (const w of STATS_WINDOWS) {
      const win = reported?.windows[w];
      if (!win) continue;
      const total = out.windows[w].requests + win.requests;
      out.windows[w].request_time =
        total === 0
          ? 0
          : (out.windows[w].request_time * out.windows[w].requests + win.request_time * win.requests) / total;
      out.windows[w].requests = total;
    }
  }
  for (const w of STATS_WINDOWS) out.windows[w].request_time = Math.round(out.windows[w].request_time * 1000) / 1000;
  return out;
}
