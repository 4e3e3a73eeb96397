/**
 * @module
 * The configuration document agents serve, and what they say about it: the current document (for a
 * push or an HTTP pull), what an agent at version N pulls (a delta or the document), and the ACK/NACK of a version, stored per replica with the services an
 * applied version still refused.
 */

import { type Outcome, ok } from "../core/outcome.ts";
import { MAX_NACK_ERROR, type ServiceRejection } from "../schema/agent-protocol.ts";
import type { ConfigAnswer } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { type AgentIdentity, agentSeen } from "./agent-identity.ts";
import { configAnswer } from "./config-delta.ts";
import { buildConfigDocument } from "./config-document.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { documentAcme } from "./project-acme.ts";

/** The document agents of this gateway serve now, or null when there is no gateway. */
export function currentDocument(gw: GatewayContext): ConfigDocument | null {
  const g = gw.state.gateway();
  return g ? buildConfigDocument(g, gw.services, documentAcme(g, gw.projectAcme)) : null;
}

/** The current document for an agent's HTTP pull; `null` when it already has this version. */
export async function configFor(
  gw: GatewayContext,
  identity: AgentIdentity,
  knownVersion: number | null,
): Promise<Outcome<ConfigDocument | null>> {
  const seen = await agentSeen(gw, identity, null);
  if (!seen.ok) return seen;
  const doc = currentDocument(gw)!;
  return ok(knownVersion !== null && knownVersion >= doc.version ? null : doc);
}

/**
 * The pull of an agent that takes deltas (`GET /api/v1/agent/config?since=N`): null when `since` is
 * current, else a delta from it or a whole document (`config-delta.ts`).
 */
export async function configSince(
  gw: GatewayContext,
  identity: AgentIdentity,
  since: number,
): Promise<Outcome<ConfigAnswer | null>> {
  const seen = await agentSeen(gw, identity, null);
  if (!seen.ok) return seen;
  return ok(configAnswer(gw, gw.state.gateway()!, since));
}

/** An ACK/NACK over HTTP (the socket's arrive in `agent-socket.ts`). */
export async function recordConfigResult(
  gw: GatewayContext,
  identity: AgentIdentity,
  version: number,
  error: string | null,
  rejected: ServiceRejection[],
): Promise<Outcome<null>> {
  const seen = await agentSeen(gw, identity, null);
  if (!seen.ok) return seen;
  applyResult(gw, identity.replicaId, version, error, rejected);
  await gw.flush();
  return ok(null);
}

/**
 * An ACK (`error` null) may still list services the agent did not apply (kept at their last good
 * state or left out): they are stored with the applied version and shown per replica and per service.
 */
export function applyResult(
  gw: GatewayContext,
  replicaId: string,
  version: number,
  error: string | null,
  rejected: ServiceRejection[],
): void {
  const r = gw.state.replica(replicaId);
  const g = gw.state.gateway();
  if (!r || !g || version > g.config_version) return;
  if (error === null) {
    if ((r.config_applied_version ?? 0) >= version) return;
    const before = new Set(
      r.config_rejected ? (JSON.parse(r.config_rejected) as ServiceRejection[]).map((x) => x.service) : [],
    );
    gw.state.updateReplica(r.id, {
      config_applied_version: version,
      config_error: null,
      config_error_version: null,
      config_rejected: rejected.length > 0 ? JSON.stringify(rejected) : null,
    });
    // One event per newly refused service, not one per version that still refuses it.
    for (const x of rejected.filter((x) => !before.has(x.service))) {
      const what = x.kept ? "keeps serving its last good state" : "does not serve it";
      gw.state.event(
        `Gateway replica ${r.replica_num} rejected service ${x.service} in configuration version ${version} and ${what}: ${x.error.slice(0, 500)}`,
      );
    }
  } else {
    gw.state.updateReplica(r.id, { config_error: error.slice(0, MAX_NACK_ERROR), config_error_version: version });
    gw.state.event(
      `Gateway replica ${r.replica_num} rejected configuration version ${version}: ${error.slice(0, 500)}`,
    );
  }
}
