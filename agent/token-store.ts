/**
 * @module
 * The agent token persisted in `<state-dir>/agent-token.json` (0600), so an agent restarted after its
 * one-time bootstrap secret was used keeps working while the token is valid.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import type { AgentBootstrap, AgentTokenResponse } from "../schema/agent.ts";

export interface StoredToken extends AgentTokenResponse {
  /** Seconds since the epoch when the agent received it: the start of its lifetime for refresh timing. */
  obtained_at: number;
}

/** A token this close to expiry is not worth resuming with. */
const MIN_REMAINING_SECONDS = 30;

export const nowSeconds = () => Date.now() / 1000;

export class TokenStore {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "agent-token.json");
  }

  /** The persisted token, or null when there is none or it is unreadable (then registering is the way). */
  async read(): Promise<StoredToken | null> {
    try {
      const t = JSON.parse(await readFile(this.file, "utf8")) as Partial<StoredToken>;
      if (
        typeof t.token !== "string" ||
        typeof t.expires_at !== "number" ||
        typeof t.obtained_at !== "number" ||
        typeof t.gateway_id !== "string" ||
        typeof t.replica_num !== "number"
      ) {
        return null;
      }
      return t as StoredToken;
    } catch {
      return null;
    }
  }

  async write(token: StoredToken): Promise<void> {
    // Atomic: a crash mid-write must not destroy the only credential the host has left.
    await writeFileAtomic(this.file, `${JSON.stringify(token)}\n`);
  }

  async remove(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/** Whether `token` belongs to this host (same gateway and replica) and has time left. */
export function isUsableFor(token: StoredToken, bootstrap: AgentBootstrap, now = nowSeconds()): boolean {
  return (
    token.gateway_id === bootstrap.gateway_id &&
    token.replica_num === bootstrap.replica_num &&
    token.expires_at - now > MIN_REMAINING_SECONDS
  );
}

/** Milliseconds since the epoch at which to refresh: half-way through the token's lifetime. */
export function refreshDueAt(token: StoredToken): number {
  return ((token.obtained_at + token.expires_at) / 2) * 1000;
}
