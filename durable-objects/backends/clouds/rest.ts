/**
 * @module
 * The plumbing the GCP, Azure and Kubernetes backends share: one REST call with a deadline that
 * turns network failures into retryable `BackendError`s, a short in-call retry for throttling and
 * 5xx answers, and deterministic idempotency keys. Each cloud reads its own error bodies.
 */
import { BackendError } from "../types.ts";

export interface RestAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or null when it is not JSON. */
  json: unknown;
}

export interface RestRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** `GCP`, `Azure`, `Kubernetes`: prefixes the messages of network errors. */
  cloud: string;
  /** Who to call instead of the global fetch (a Kubernetes mTLS certificate binding). */
  fetcher?: { fetch: typeof fetch };
}

export async function restCall(req: RestRequest): Promise<RestAnswer> {
  let res: Response;
  try {
    res = await (req.fetcher ?? globalThis).fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (cause) {
    const timedOut = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
    const where = new URL(req.url).origin;
    throw new BackendError(
      timedOut ? "Timeout" : "Unreachable",
      timedOut
        ? `${req.cloud} Error: Timeout: ${where} did not answer within ${req.timeoutMs / 1000} s`
        : `${req.cloud} Error: Unreachable: ${where}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { retryable: true, cause },
    );
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` again after retryable failures, a few times with doubling pauses, so that a burst of
 * throttling or a flaky 5xx does not cost a whole reconciler back-off step (minutes).
 */
export async function withRetries<T>(fn: () => Promise<T>, attempts: number, baseDelayMs: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof BackendError) || !e.retryable || attempt >= attempts) throw e;
      await sleep(baseDelayMs * 2 ** (attempt - 1));
    }
  }
}

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * A UUID (version 8, RFC 9562: custom) computed from `seed`: the same seed always gives the same
 * request id, so a repeated call is recognised by the cloud as the same request.
 */
export async function deterministicUuid(seed: string): Promise<string> {
  const h = (await sha256Hex(seed)).slice(0, 32).split("");
  h[12] = "8";
  h[16] = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  const s = h.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Checks a configured endpoint: https, or plain http to a loopback address (fakes, local
 * development). Anything else would send tokens in clear text.
 */
export function endpoint(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BackendError("NotConfigured", `${field}: expected a URL, got ${JSON.stringify(value)}`, {
      retryable: false,
    });
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.has(url.hostname))) {
    throw new BackendError("NotConfigured", `${field}: expected an https URL (http only to a loopback address)`, {
      retryable: false,
    });
  }
  return url.href.replace(/\/+$/, "");
}
