/**
 * @module
 * The Worker variables the cloud backends read: `AGENT_PACKAGE_URL` (what cloud hosts install),
 * `CLOUD_API_TIMEOUT_MS` (the deadline of one cloud API call) and, for tests against fake clouds,
 * `CLOUD_POLL_INTERVAL_MS` / `CLOUD_RETRY_DELAY_MS` / `CLOUD_PROVISION_POLL_MS` (the pauses between
 * operation polls, in-call retries, and the object's looks at a provisioning host).
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

/**
 * The pauses a backend takes while it waits on a cloud: between polls of a long operation (or of a
 * load balancer's address) and before the first in-call retry (later retries double it). Unset, each
 * backend keeps its own default (2 s polls, 0.5 s retries; 0.25 s for AWS).
 */
export interface BackendTiming {
  pollIntervalMs?: number;
  retryDelayMs?: number;
  /** Between the object's looks at a provisioning host (`CLOUD_PROVISION_POLL_MS`; default 2 s). */
  provisionPollMs?: number;
}

/**
 * `CLOUD_POLL_INTERVAL_MS` and `CLOUD_RETRY_DELAY_MS`. Production leaves both unset; the tests set
 * them so that a fake cloud's faults cost milliseconds, not the seconds a real cloud needs.
 */
export function backendTiming(env: {
  CLOUD_POLL_INTERVAL_MS?: string;
  CLOUD_RETRY_DELAY_MS?: string;
  CLOUD_PROVISION_POLL_MS?: string;
}): BackendTiming {
  const ms = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined || value === "") return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 60_000) {
      throw new BackendError("NotConfigured", `${name}: expected milliseconds between 1 and 60000, got "${value}"`, {
        retryable: false,
      });
    }
    return n;
  };
  return {
    pollIntervalMs: ms("CLOUD_POLL_INTERVAL_MS", env.CLOUD_POLL_INTERVAL_MS),
    retryDelayMs: ms("CLOUD_RETRY_DELAY_MS", env.CLOUD_RETRY_DELAY_MS),
    provisionPollMs: ms("CLOUD_PROVISION_POLL_MS", env.CLOUD_PROVISION_POLL_MS),
  };
}
