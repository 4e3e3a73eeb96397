/**
 * @module
 * Azure Resource Manager over REST: authenticated JSON calls with an `api-version`, ARM's error
 * envelope rendered as `Azure Error: <code>: <message>`, and long-running operations followed
 * through `Azure-AsyncOperation` (status documents) or `Location` (202 until done).
 */
import { type RestAnswer, restCall, sleep, withRetries } from "../clouds/rest.ts";
import { BackendError } from "../types.ts";
import { type AzureIdentity, armToken, forgetArmToken } from "./token.ts";

export interface ArmOptions {
  identity: AzureIdentity;
  endpoint: string;
  subscriptionId: string;
  timeoutMs: number;
  pollIntervalMs: number;
  operationTimeoutMs: number;
  retryDelayMs: number;
}

interface ArmErrorBody {
  error?: { code?: string; message?: string };
}

const RETRYABLE_CODES = new Set([
  "TooManyRequests",
  "RetryableError",
  "InternalServerError",
  "AllocationFailed",
  "OperationPreempted",
]);

function armError(code: string, message: string, status: number): BackendError {
  return new BackendError(code, `Azure Error: ${code}: ${message}`, {
    retryable: status === 429 || status >= 500 || RETRYABLE_CODES.has(code),
  });
}

export function errorOf(res: RestAnswer): BackendError {
  const e = (res.json as ArmErrorBody | null)?.error;
  return armError(e?.code ?? `HTTP ${res.status}`, e?.message ?? (res.text.slice(0, 200) || "no message"), res.status);
}

export function armApi(o: ArmOptions) {
  const sub = `${o.endpoint}/subscriptions/${encodeURIComponent(o.subscriptionId)}`;

  async function once(method: string, url: string, body?: unknown): Promise<RestAnswer> {
    const token = await armToken(o.identity, o.timeoutMs);
    const res = await restCall({
      method,
      url,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: o.timeoutMs,
      cloud: "Azure",
    });
    if (res.status === 401) {
      // A cached token revoked or expired early: the retry gets a fresh one (bad secrets fail at Entra ID).
      await forgetArmToken(o.identity);
      const e = errorOf(res);
      throw new BackendError(e.code, e.message, { retryable: true });
    }
    if (res.status >= 400 && res.status !== 404) throw errorOf(res);
    return res;
  }

  const withVersion = (path: string, apiVersion: string) =>
    `${sub}${path}${path.includes("?") ? "&" : "?"}api-version=${apiVersion}`;

  /** One ARM call; 404 comes back as an answer, other errors throw after in-call retries. */
  const call = (method: string, path: string, apiVersion: string, body?: unknown) =>
    withRetries(() => once(method, withVersion(path, apiVersion), body), 4, o.retryDelayMs);

  /**
   * Follows a long-running operation to its end. Returns false when it is still running at the
   * deadline (a later pass looks again); throws the operation's error when it failed.
   */
  async function settle(res: RestAnswer): Promise<boolean> {
    const asyncOp = res.headers.get("azure-asyncoperation");
    const location = res.headers.get("location");
    if (!asyncOp && !(location && res.status === 202)) return true;
    const deadline = Date.now() + o.operationTimeoutMs;
    let pause = Math.min(250, o.pollIntervalMs);
    for (;;) {
      if (Date.now() > deadline) return false;
      await sleep(pause);
      pause = Math.min(pause * 2, o.pollIntervalMs);
      const poll = await withRetries(() => once("GET", (asyncOp ?? location)!), 4, o.retryDelayMs);
      if (asyncOp) {
        const doc = (poll.json ?? {}) as { status?: string; error?: { code?: string; message?: string } };
        if (doc.status === "Succeeded") return true;
        if (doc.status === "Failed" || doc.status === "Canceled") {
          throw armError(
            doc.error?.code ?? doc.status,
            doc.error?.message ?? `the operation ${doc.status.toLowerCase()}`,
            400,
          );
        }
      } else if (poll.status !== 202) {
        return true;
      }
    }
  }

  return { call, settle };
}
