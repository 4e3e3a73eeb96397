/**
 * @module
 * The mesh relay (issue 15): a gateway host's digest (`schema/mesh.ts`, already validated with the
 * rest of the agent's message) goes to every other agent socket of the gateway, as it came. Nothing is
 * stored, so a hibernated object wakes only for the digest and forgets it; a host without peers
 * costs one message per interval and no fan-out. Every host already holds this socket whatever the
 * backend, so the relay needs no reachability between hosts (gossip between hosts would save the
 * relay's hop, ~tens of ms, but not every backend lets hosts of a gateway reach each other).
 */
import type { MeshDigest } from "../schema/mesh.ts";

/** Sends `digest` to every socket but `from`; returns how many it reached. */
export function relayDigest(sockets: Iterable<WebSocket>, from: WebSocket, digest: MeshDigest): number {
  const frame = JSON.stringify({ type: "mesh", digest });
  let sent = 0;
  for (const ws of sockets) {
    if (ws === from) continue;
    try {
      ws.send(frame);
      sent++;
    } catch {
      // A socket that cannot take a frame is gone; its agent reconnects.
    }
  }
  return sent;
}
