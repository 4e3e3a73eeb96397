/**
 * @module
 * What a connected agent reports besides ACK/NACK and health: traffic windows (which feed the
 * autoscaler) and its certificates (which become events when they change).
 */
import type { CertificateState, ServiceStats } from "../schema/agent-protocol.ts";
import { certificateEvents } from "./certificate-report.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { evaluateDue, scheduleScaling } from "./scaling-schedule.ts";
import type { ReplicaRow } from "./state.ts";

export async function recordStats(gw: GatewayContext, r: ReplicaRow, services: ServiceStats[]): Promise<void> {
  // Received-at on this clock, not the host's: staleness must not depend on the host's clock.
  const now = Date.now();
  gw.state.updateReplica(
    r.id,
    { stats: JSON.stringify(services), stats_at: now, agent_last_seen_at: new Date(now).toISOString() },
    { bump: false },
  );
  gw.history.record(gw.services, gw.state.replicas(), now);
  const changed = evaluateDue(gw, now);
  await scheduleScaling(gw);
  if (changed) await gw.flush();
}

export async function recordCertificates(gw: GatewayContext, r: ReplicaRow, hosts: CertificateState[]): Promise<void> {
  const previous = r.certificates ? (JSON.parse(r.certificates) as CertificateState[]) : [];
  const text = JSON.stringify(hosts);
  if (text === r.certificates) return;
  gw.state.updateReplica(r.id, { certificates: text });
  for (const e of certificateEvents(r.replica_num, previous, hosts)) {
    gw.state.event(e.message, null, e.typed);
  }
  await gw.flush();
}
