/**
 * @module
 * The Kubernetes API over REST from the Workers runtime. What workerd's fetch allows decides what
 * is supported: a bearer token; a client certificate only through a Worker mTLS certificate
 * binding (`[[mtls_certificates]]` in wrangler.toml, whose `fetch` presents it); and only API
 * servers whose certificate chains to a public CA, because fetch cannot be given extra trust
 * anchors. A `ca_certificate_pem` is therefore never used, and TLS is never skipped: a handshake
 * failure comes back as an error that says so.
 */
import { endpoint, type RestAnswer, restCall, withRetries } from "../clouds/rest.ts";
import { BackendError } from "../types.ts";

export interface KubeApiOptions {
  server: string;
  token?: string;
  /** The mTLS certificate binding's fetcher, when the cluster wants a client certificate. */
  fetcher?: { fetch: typeof fetch };
  hasCustomCa: boolean;
  timeoutMs: number;
  retryDelayMs: number;
}

/** `metav1.Status`, the body of every API error. */
interface Status {
  kind?: string;
  reason?: string;
  message?: string;
  code?: number;
}

export function kubeError(res: RestAnswer): BackendError {
  const s = (res.json ?? {}) as Status;
  const reason = s.reason || `HTTP ${res.status}`;
  const message = s.message || res.text.slice(0, 200) || "no message";
  return new BackendError(reason, `Kubernetes Error: ${reason}: ${message}`, {
    retryable: res.status === 429 || res.status >= 500,
  });
}

export function kubeApi(o: KubeApiOptions) {
  const server = endpoint("server", o.server);

  async function once(method: string, path: string, body?: unknown): Promise<RestAnswer> {
    try {
      const res = await restCall({
        method,
        url: `${server}${path}`,
        headers: {
          accept: "application/json",
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: o.timeoutMs,
        cloud: "Kubernetes",
        fetcher: o.fetcher,
      });
      if (res.status >= 400 && res.status !== 404 && res.status !== 409) throw kubeError(res);
      return res;
    } catch (e) {
      // workerd reports a refused certificate as an opaque "internal error"; a refused connection differs.
      const tls = /internal error|certificate|tls|ssl|handshake/i;
      if (e instanceof BackendError && e.code === "Unreachable" && server.startsWith("https:") && tls.test(e.message)) {
        throw new BackendError(
          "TLS",
          `Kubernetes Error: TLS: no trusted TLS connection to ${server}. Workers trust public CAs only` +
            (o.hasCustomCa ? " and cannot use ca_certificate_pem" : "") +
            ": serve the API server with a publicly trusted certificate (e.g. behind a Cloudflare Tunnel).",
          // With a private CA configured this will not heal by itself; otherwise it may be transient.
          { retryable: !o.hasCustomCa, cause: e },
        );
      }
      throw e;
    }
  }

  /** 404 and 409 come back as answers; other errors throw (throttling and 5xx after retries). */
  const call = (method: string, path: string, body?: unknown) =>
    withRetries(() => once(method, path, body), 4, o.retryDelayMs);
  return { call };
}
