/**
 * @module
 * The OAuth2 token step GCP (JWT bearer, RFC 7523) and Azure (client credentials) share: post a
 * form to the token endpoint, read `access_token`/`expires_in` or the error, and keep tokens per
 * isolate until a minute before they expire, so a reconciler pass asks at most about once an hour.
 */
import { BackendError } from "../types.ts";
import { restCall } from "./rest.ts";

const EARLY_REFRESH_MS = 60_000;

/** Tokens by caller-chosen key (endpoint, identity, a digest of the secret). */
export class TokenCache {
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();

  get(key: string): string | null {
    const hit = this.#tokens.get(key);
    return hit && hit.expiresAt - EARLY_REFRESH_MS > Date.now() ? hit.token : null;
  }

  set(key: string, token: string, expiresInSeconds: number): void {
    this.#tokens.set(key, { token, expiresAt: Date.now() + expiresInSeconds * 1000 });
  }

  /** The API answered 401 to the cached token: the next call asks for a new one. */
  forget(key: string): void {
    this.#tokens.delete(key);
  }
}

/**
 * Posts `form` to the token endpoint. A refusal becomes `<Cloud> Error: <error>: <first line of
 * its description>` (Entra ID appends a trace and timestamp after the first line); 429 and 5xx are
 * retryable.
 */
export async function requestToken(request: {
  url: string;
  form: URLSearchParams;
  timeoutMs: number;
  cloud: string;
}): Promise<{ token: string; expiresInSeconds: number }> {
  const res = await restCall({
    method: "POST",
    url: request.url,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: request.form.toString(),
    timeoutMs: request.timeoutMs,
    cloud: request.cloud,
  });
  const body = (res.json ?? {}) as {
    access_token?: string;
    expires_in?: number;
    error?: string;
    error_description?: string;
  };
  if (res.status !== 200 || !body.access_token) {
    const code = body.error ?? `HTTP ${res.status}`;
    const why = (body.error_description ?? res.text.slice(0, 200)).split(/\r?\n/)[0] || "no token";
    throw new BackendError(code, `${request.cloud} Error: ${code}: ${why}`, {
      retryable: res.status === 429 || res.status >= 500,
    });
  }
  return { token: body.access_token, expiresInSeconds: body.expires_in ?? 3600 };
}
