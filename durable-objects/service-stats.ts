/**
 * @module
 * A service's traffic as the API and the autoscaler see it: the windows every running gateway
 * replica reported, summed (LLM distributions merged bucket by bucket), and each replica's own.
 */
import type { ServiceStats } from "../schema/agent-protocol.ts";
import type { EngineSignals } from "../schema/engine.ts";
import { type ReplicaHealth, worseHealth } from "../schema/health.ts";
import { LLM_WINDOWS } from "../schema/llm-stats.ts";
import { addLlmWindow, emptyLlmWindow } from "../schema/traffic.ts";

/** What of a gateway replica's row the stats are read from (`ReplicaRow`: the agent's last report, as JSON). */
export interface ReportingReplica {
  stats: string | null;
  /** When the report arrived, on the object's clock (ms). */
  stats_at: number | null;
}

/**
 * Agents report every 5 s; a report older than this is as good as none (a replica whose agent lost
 * the socket keeps running, and its last windows would otherwise freeze the autoscaler's view).
 */
export const STATS_MAX_AGE_MS = 60_000;

const zeroWindows = (): ServiceStats["windows"] => ({
  "30": { requests: 0, request_time: 0 },
  "60": { requests: 0, request_time: 0 },
  "300": { requests: 0, request_time: 0 },
});

/**
 * A replica row's last report, parsed once, by service: a report carries every service of the
 * gateway (histograms included), so parsing it for each view of one service made every apply and
 * registration O(services). Kept per gateway replica (its id, when the row has one) for as long as
 * the report is unchanged, and per row object otherwise.
 */
type ParsedReport = { text: string; byService: Map<string, ServiceStats> };
const parsed = new WeakMap<ReportingReplica, ParsedReport>();
const byReplicaId = new Map<string, ParsedReport>();
/** Gateway replicas whose report is kept (an isolate may run many objects). */
const MAX_KEPT_REPORTS = 256;

function reportOf(r: ReportingReplica & { stats: string }): Map<string, ServiceStats> {
  const id = (r as { id?: unknown }).id;
  const cached = typeof id === "string" ? byReplicaId.get(id) : parsed.get(r);
  if (cached?.text === r.stats) return cached.byService;
  const report = JSON.parse(r.stats) as ServiceStats[];
  const byService = new Map<string, ServiceStats>();
  for (const x of report) if (!byService.has(x.service)) byService.set(x.service, x);
  const entry = { text: r.stats, byService };
  if (typeof id === "string") {
    byReplicaId.delete(id);
    byReplicaId.set(id, entry);
    if (byReplicaId.size > MAX_KEPT_REPORTS) byReplicaId.delete(byReplicaId.keys().next().value!);
  } else parsed.set(r, entry);
  return entry.byService;
}

/**
 * What one gateway replica reported of a service: null when it has not reported within
 * {@link STATS_MAX_AGE_MS} of `now`; zero windows when its report does not name the service.
 */
export function replicaStats(service: string, r: ReportingReplica, now = Date.now()): ServiceStats | null {
  if (!r.stats || r.stats_at === null || now - r.stats_at > STATS_MAX_AGE_MS) return null;
  const reported = reportOf(r as ReportingReplica & { stats: string }).get(service);
  return reported ?? { service, windows: zeroWindows() };
}

/**
 * Sums traffic over running gateway replicas (request-weighted mean time; `llm` windows added bucket
 * by bucket, present when any replica measured something in the window); null if one has not
 * reported, or not within {@link STATS_MAX_AGE_MS} of `now`.
 */
export function aggregateStats(
  service: string,
  running: readonly ReportingReplica[],
  now = Date.now(),
): ServiceStats | null {
  if (running.length === 0) return null;
  const out: ServiceStats = { service, windows: zeroWindows() };
  for (const r of running) {
    const reported = replicaStats(service, r, now);
    if (!reported) return null;
    for (const w of LLM_WINDOWS) {
      const win = reported.windows[w];
      const sum = out.windows[w];
      const total = sum.requests + win.requests;
      sum.request_time = total === 0 ? 0 : (sum.request_time * sum.requests + win.request_time * win.requests) / total;
      sum.requests = total;
      if (win.llm) {
        sum.llm ??= emptyLlmWindow();
        addLlmWindow(sum.llm, win.llm);
      }
    }
  }
  for (const w of LLM_WINDOWS) out.windows[w].request_time = Math.round(out.windows[w].request_time * 1000) / 1000;
  return out;
}

/** dstack's `stats` as the API has always shown them: requests and mean time, no distributions. */
export function withoutLlm(stats: ServiceStats): ServiceStats {
  const windows = zeroWindows();
  for (const w of LLM_WINDOWS) {
    windows[w] = { requests: stats.windows[w].requests, request_time: stats.windows[w].request_time };
  }
  return { service: stats.service, windows };
}

/**
 * A service's replicas' engine signals as the API shows them: every running gateway replica scrapes
 * every service replica, so for each service replica the freshest read wins (its age as of `now`:
 * the age the agent reported plus the report's own age); a replica no gateway replica read yet shows
 * the report of any of them (its state and error). Null when no recent report carries signals.
 */
export function engineSignals(
  service: string,
  running: readonly ReportingReplica[],
  now = Date.now(),
): EngineSignals[] | null {
  const best = new Map<string, EngineSignals>();
  let any = false;
  for (const r of running) {
    const reported = replicaStats(service, r, now);
    if (!reported?.engine) continue;
    any = true;
    const lag = (now - r.stats_at!) / 1000;
    for (const s of reported.engine) {
      const aged = {
        ...s,
        age_seconds: s.age_seconds === null ? null : Math.round((s.age_seconds + lag) * 1000) / 1000,
      };
      const have = best.get(s.replica);
      const fresher =
        !have || (aged.age_seconds !== null && (have.age_seconds === null || aged.age_seconds < have.age_seconds));
      if (fresher) best.set(s.replica, aged);
    }
  }
  return any ? [...best.values()] : null;
}

/**
 * {@link engineSignals} keyed by service replica id, without the `replica` field the API's replica
 * entry already names; empty when no recent report carries signals.
 */
export function engineByReplica(
  service: string,
  running: readonly ReportingReplica[],
  now = Date.now(),
): Map<string, Omit<EngineSignals, "replica">> {
  const out = new Map<string, Omit<EngineSignals, "replica">>();
  for (const { replica, ...rest } of engineSignals(service, running, now) ?? []) out.set(replica, rest);
  return out;
}

/**
 * A service's replicas' health as the API shows it (docs/health.md): each running gateway replica
 * reports its own view (its checks, its passive failures and breakers); the worst wins, since a
 * service replica one gateway host cannot use is a problem worth showing. Keyed by service replica id.
 */
export function healthByReplica(
  service: string,
  running: readonly ReportingReplica[],
  now = Date.now(),
): Map<string, Omit<ReplicaHealth, "replica">> {
  const worst = new Map<string, ReplicaHealth>();
  for (const r of running) {
    for (const h of replicaStats(service, r, now)?.health ?? []) {
      const have = worst.get(h.replica);
      worst.set(h.replica, have ? worseHealth(have, h) : h);
    }
  }
  const out = new Map<string, Omit<ReplicaHealth, "replica">>();
  for (const { replica, ...rest } of worst.values()) out.set(replica, rest);
  return out;
}
