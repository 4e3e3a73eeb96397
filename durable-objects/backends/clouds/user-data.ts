/**
 * @module
 * The user-data of a cloud VM: the agent's cloud-init (`agent/cloud-init.ts`) for this replica's
 * bootstrap, with the agent package the Worker is configured with (`AGENT_PACKAGE_URL`).
 */

import { CloudInitError, renderCloudInit } from "../../../agent/cloud-init.ts";
import type { AgentBootstrap } from "../../../schema/agent.ts";
import { BackendError } from "../types.ts";

export function agentPackageUrl(value: string | undefined): string {
  if (!value) {
    throw new BackendError(
      "NotConfigured",
      "AGENT_PACKAGE_URL is not set: cloud hosts install the agent from that https URL of its package tarball (npm pack)",
      { retryable: false },
    );
  }
  return value;
}

export function cloudUserData(bootstrap: AgentBootstrap, packageUrl: string): string {
  try {
    return renderCloudInit({ bootstrap, agentPackageUrl: packageUrl });
  } catch (e) {
    if (e instanceof CloudInitError) throw new BackendError("BadUserData", e.message, { retryable: false, cause: e });
    throw e;
  }
}

/** `CLOUD_API_TIMEOUT_MS`, the deadline of one cloud API call (default 20 s). */
export function cloudTimeoutMs(env: { CLOUD_API_TIMEOUT_MS?: string }): number {
  const ms = Number(env.CLOUD_API_TIMEOUT_MS ?? 20_000);
  return Number.isFinite(ms) && ms > 0 ? ms : 20_000;
}
