/**
 * @module
 * Who an agent is, and whether it is still welcome: the one-time bootstrap secret exchanged for the
 * replica's identity (the Worker then signs a short-lived JWT), the check every later call makes
 * that the token's replica is still part of the gateway, and the agent's health reports.
 */

import { secretsEqual } from "../core/crypto.ts";
import { failure, type Outcome, ok } from "../core/outcome.ts";
import type { RouterReport } from "../schema/agent-protocol.ts";
import { type GatewayContext, kick } from "./gateway-context.ts";
import { setReplicaStatus, settleGatewayStatus } from "./reconciler.ts";
import type { ReplicaRow } from "./state.ts";

export interface AgentRegistration {
  gatewayId: string;
  replicaNum: number;
  secret: string;
  version: string | null;
}

export interface AgentIdentity {
  gatewayId: string;
  replicaId: string;
  replicaNum: number;
}

/** An agent's health (HTTP heartbeat or WebSocket `health`); `routers` only from agents that know them. */
export interface HealthReport {
  version: string | null;
  status: string;
  message: string | null;
  routers?: RouterReport[];
}

/** Exchanges a replica's one-time bootstrap secret for its identity. */
export async function registerAgent(gw: GatewayContext, input: AgentRegistration): Promise<Outcome<AgentIdentity>> {
  const denied = failure("denied", "invalid_bootstrap", "invalid or already used bootstrap secret");
  const g = gw.state.gateway();
  if (!g || g.id !== input.gatewayId || g.to_be_deleted) return denied;
  const replica = gw.state
    .replicas()
    .find(
      (r) =>
        r.replica_num === input.replicaNum &&
        (r.status === "submitted" || r.status === "provisioning") &&
        r.bootstrap_secret !== null,
    );
  if (!replica?.bootstrap_secret || !(await secretsEqual(input.secret, replica.bootstrap_secret))) return denied;
  const now = new Date().toISOString();
  // Single use: the secret is forgotten in the same write that records the registration.
  gw.state.updateReplica(replica.id, {
    bootstrap_secret: null,
    agent_registered_at: now,
    agent_last_seen_at: now,
    agent_version: input.version,
  });
  gw.state.event(`Gateway replica ${replica.replica_num} agent registered`);
  if (replica.status === "provisioning") {
    setReplicaStatus(gw.state, replica, "running", null);
    settleGatewayStatus(gw.state);
  }
  await kick(gw);
  await gw.flush();
  return ok({ gatewayId: g.id, replicaId: replica.id, replicaNum: replica.replica_num });
}

/** Confirms a token's replica is still part of this gateway (used for heartbeats and refresh). */
export async function agentSeen(
  gw: GatewayContext,
  identity: AgentIdentity,
  report: HealthReport | null,
): Promise<Outcome<AgentIdentity>> {
  const g = gw.state.gateway();
  const r = gw.state.replica(identity.replicaId);
  if (!g || g.id !== identity.gatewayId || !r || r.status === "terminated" || r.status === "terminating") {
    return failure("denied", "unauthorized", "this gateway replica is no longer active");
  }
  if (report) await recordHealth(gw, r, report);
  return ok({ gatewayId: g.id, replicaId: r.id, replicaNum: r.replica_num });
}

/** An agent's health report (HTTP heartbeat or WebSocket): telemetry, plus the replica's message. */
export async function recordHealth(gw: GatewayContext, r: ReplicaRow, report: HealthReport): Promise<void> {
  gw.state.updateReplica(
    r.id,
    { agent_last_seen_at: new Date().toISOString(), ...(report.version ? { agent_version: report.version } : {}) },
    { bump: false },
  );
  // Older agents say nothing about routers: what they last said (nothing) stands.
  const routers = report.routers ? JSON.stringify(report.routers) : null;
  if (routers !== null && routers !== r.routers) {
    gw.state.updateReplica(r.id, { routers });
    await gw.flush();
  }
  const message = report.status === "healthy" ? null : (report.message ?? `agent reports ${report.status}`);
  if (r.status === "running" && r.status_message !== message) {
    gw.state.updateReplica(r.id, { status_message: message });
    await gw.flush();
  }
}
