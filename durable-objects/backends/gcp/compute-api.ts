/**
 * @module
 * Compute Engine v1 over REST: authenticated JSON calls, Google's error envelope rendered as
 * `GCP Error: <reason>: <message>`, and operations polled until DONE.
 */

import { type RestAnswer, restCall, sleep, withRetries } from "../clouds/rest.ts";
import { BackendError } from "../types.ts";
import { accessToken, forgetToken, type ServiceAccountKey } from "./token.ts";

export interface ComputeApiOptions {
  projectId: string;
  key: ServiceAccountKey;
  tokenUri: string;
  apiEndpoint: string;
  timeoutMs: number;
  /** Pause between operation polls. */
  pollIntervalMs: number;
  /** How long one call waits for an operation before leaving it to a later pass. */
  operationTimeoutMs: number;
  retryDelayMs: number;
}

/** Google's error envelope (https://cloud.google.com/apis/design/errors). */
interface GoogleError {
  error?: { code?: number; message?: string; status?: string; errors?: { reason?: string; message?: string }[] };
}

export interface Operation {
  name: string;
  status: "PENDING" | "RUNNING" | "DONE";
  targetLink?: string;
  zone?: string;
  error?: { errors?: { code?: string; message?: string }[] };
}

const RETRYABLE_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"]);
/** Capacity errors of an operation: the same request may succeed later. */
const RETRYABLE_OPERATION_CODES = new Set([
  "ZONE_RESOURCE_POOL_EXHAUSTED",
  "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
  "RESOURCE_NOT_READY",
]);

function gcpError(res: RestAnswer): BackendError {
  const err = (res.json as GoogleError | null)?.error;
  const reason = err?.errors?.[0]?.reason ?? err?.status ?? `HTTP ${res.status}`;
  const message = err?.message ?? (res.text.slice(0, 200) || "no message");
  return new BackendError(reason, `GCP Error: ${reason}: ${message}`, {
    retryable: res.status === 429 || res.status >= 500 || RETRYABLE_REASONS.has(reason),
  });
}

export function computeApi(o: ComputeApiOptions) {
  const base = `${o.apiEndpoint}/compute/v1/projects/${encodeURIComponent(o.projectId)}`;

  async function once(method: string, path: string, body?: unknown): Promise<RestAnswer> {
    const token = await accessToken(o.key, o.tokenUri, o.timeoutMs);
    const res = await restCall({
      method,
      url: `${base}${path}`,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: o.timeoutMs,
      cloud: "GCP",
    });
    if (res.status === 401) {
      // A cached token revoked or expired early: the retry signs a fresh one (bad keys fail at the token endpoint).
      await forgetToken(o.key, o.tokenUri);
      const e = gcpError(res);
      throw new BackendError(e.code, e.message, { retryable: true });
    }
    if (res.status >= 400 && res.status !== 404 && res.status !== 409) throw gcpError(res);
    return res;
  }

  /** 404 and 409 come back as answers (callers decide); other errors throw. */
  const call = (method: string, path: string, body?: unknown) =>
    withRetries(() => once(method, path, body), 4, o.retryDelayMs);

  /** Polls until DONE or the deadline; throws the operation's error. Returns null when still running. */
  async function waitFor(op: Operation, opPath: string): Promise<Operation | null> {
    const deadline = Date.now() + o.operationTimeoutMs;
    let current = op;
    // Most operations finish within seconds: poll soon, then back off to the configured interval.
    let pause = Math.min(250, o.pollIntervalMs);
    while (current.status !== "DONE") {
      if (Date.now() > deadline) return null;
      await sleep(pause);
      pause = Math.min(pause * 2, o.pollIntervalMs);
      const res = await call("GET", `${opPath}/${encodeURIComponent(current.name)}`);
      if (res.status === 404) return null;
      current = res.json as Operation;
    }
    const first = current.error?.errors?.[0];
    if (first) {
      const code = first.code ?? "OPERATION_FAILED";
      throw new BackendError(code, `GCP Error: ${code}: ${first.message ?? "the operation failed"}`, {
        retryable: RETRYABLE_OPERATION_CODES.has(code),
      });
    }
    return current;
  }

  return { call, waitFor };
}
