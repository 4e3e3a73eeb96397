/**
 * @module
 * The Worker variables the cloud backends read: `AGENT_PACKAGE_URL` (what cloud hosts install) and
 * `CLOUD_API_TIMEOUT_MS` (the deadline of one cloud API call).
 */
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

/** `CLOUD_API_TIMEOUT_MS`, the deadline of one cloud API call (default 20 s). */
export function cloudTimeoutMs(env: { CLOUD_API_TIMEOUT_MS?: string }): number {
  const ms = Number(env.CLOUD_API_TIMEOUT_MS ?? 20_000);
  return Number.isFinite(ms) && ms > 0 ? ms : 20_000;
}
