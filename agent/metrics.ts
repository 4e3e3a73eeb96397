/**
 * @module
 * The agent's own series, added to the proxy's in the host's exposition (`GET /metrics` on the admin
 * listener, and on the gateway's address when public): the configuration version served and the
 * services it does not serve as configured, each certificate's expiry and failures, the
 * control-plane link, and the agent's version. Read from the agent's state at each scrape.
 */
import { METRICS, type MetricFamily, type MetricSpec } from "../proxy/index.ts";
import type { CertificateState, ServiceRejection } from "../schema/agent-protocol.ts";

export interface AgentMetricsState {
  configVersion: number | null;
  rejected: readonly ServiceRejection[];
  certificates: readonly CertificateState[];
  connected: boolean;
  /** Milliseconds since the epoch of the link's last change (or of the agent's start). */
  linkChangedAt: number;
  version: string;
}

const gauge = (spec: MetricSpec, samples: { labels: string[]; value: number }[]): MetricFamily => ({
  name: spec.name,
  help: spec.help,
  type: "gauge",
  samples,
});

export function agentFamilies(state: AgentMetricsState): MetricFamily[] {
  const expiring = state.certificates.flatMap((c) => {
    const at = c.not_after === null ? Number.NaN : Date.parse(c.not_after);
    return Number.isFinite(at) ? [{ labels: ["host", c.host], value: Math.floor(at / 1000) }] : [];
  });
  return [
    gauge(METRICS.configVersion, [{ labels: [], value: state.configVersion ?? 0 }]),
    gauge(METRICS.rejectedServices, [{ labels: [], value: state.rejected.length }]),
    gauge(
      METRICS.serviceRejected,
      state.rejected.map((r) => ({ labels: ["service", r.service, "kept", String(r.kept)], value: 1 })),
    ),
    gauge(METRICS.certificateExpiry, expiring),
    gauge(
      METRICS.certificateFailing,
      state.certificates.map((c) => ({ labels: ["host", c.host], value: c.last_error === null ? 0 : 1 })),
    ),
    gauge(METRICS.linkUp, [{ labels: [], value: state.connected ? 1 : 0 }]),
    gauge(METRICS.linkChanged, [{ labels: [], value: Math.floor(state.linkChangedAt / 1000) }]),
    gauge(METRICS.agentInfo, [{ labels: ["version", state.version], value: 1 }]),
  ];
}
