/**
 * @module
 * The HTTP heartbeat (`POST /api/v1/agent/heartbeat`): the host's health report while the WebSocket
 * is down (on the socket, `health` messages replace it). Logged on changes only: a line per period
 * would bury the events that matter.
 */

import type { HostHealth } from "./config-socket.ts";
import { type ControlPlaneClient, isUnauthorized } from "./control-plane-client.ts";
import type { Credentials } from "./credentials.ts";
import type { LinkState } from "./link-state.ts";
import type { Logger } from "./log.ts";

export interface HeartbeatOptions {
  client: ControlPlaneClient;
  credentials: Credentials;
  link: LinkState;
  health: () => HostHealth;
  version: string;
  intervalMs: number;
  log: Logger;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function runHeartbeat(options: HeartbeatOptions, signal: AbortSignal): Promise<void> {
  const { client, credentials, link, log, intervalMs } = options;
  let lastBeatAt = Number.NEGATIVE_INFINITY;
  let healthy: boolean | null = null;
  while (!signal.aborted) {
    if (link.connected) {
      await link.changed(signal);
      continue;
    }
    // Counted from the link's loss too: a WebSocket that is merely reconnecting needs no heartbeat.
    const dueAt = Math.max(link.since, lastBeatAt) + intervalMs;
    if (Date.now() < dueAt) {
      await link.changed(signal, dueAt - Date.now());
      continue;
    }
    const token = await credentials.ready(signal);
    if (!token) return;
    if (link.connected) continue;
    lastBeatAt = Date.now();
    try {
      const { status, message, routers } = options.health();
      await client.heartbeat(
        token.token,
        { version: options.version, status, message, ...(routers ? { routers } : {}) },
        signal,
      );
      if (healthy !== true) log.info("heartbeat accepted");
      healthy = true;
    } catch (error) {
      if (signal.aborted) return;
      if (isUnauthorized(error)) {
        log.warn(`token refused on heartbeat (${errorMessage(error)}); getting a new one`);
        credentials.refused(token.token);
      } else if (healthy !== false) {
        log.warn(`heartbeat failed (${errorMessage(error)})`);
      }
      healthy = false;
    }
  }
}
