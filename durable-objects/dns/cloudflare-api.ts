/**
 * @module
 * The slice of Cloudflare's v4 API that DNS automation needs: list, create and delete DNS records
 * of one zone with an API token. Errors read Cloudflare's envelope
 * (`{success, errors: [{code, message}]}`) as `Cloudflare Error: <code>: <message>`.
 */

import type { CloudflareDnsCredentials } from "../../schema/dns-automation.ts";
import { endpoint, restCall, withRetries } from "../backends/clouds/rest.ts";
import { BackendError } from "../backends/types.ts";

const DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4";

export interface CloudflareRecord {
  id: string;
  type: string;
  name: string;
  content: string;
}

interface Envelope<T> {
  success?: boolean;
  errors?: { code?: number; message?: string }[];
  result?: T;
}

export function cloudflareDns(c: CloudflareDnsCredentials, timeoutMs: number) {
  const base = `${endpoint("api_endpoint", c.api_endpoint ?? DEFAULT_CLOUDFLARE_API)}/zones/${c.zone_id}/dns_records`;

  async function once<T>(method: string, url: string, body?: unknown): Promise<T | null> {
    const res = await restCall({
      method,
      url,
      headers: { authorization: `Bearer ${c.api_token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      timeoutMs,
      cloud: "Cloudflare",
    });
    const env = (res.json ?? {}) as Envelope<T>;
    if (res.status === 404 && method === "DELETE") return null;
    if (res.status >= 400 || env.success === false) {
      const first = env.errors?.[0];
      const code = String(first?.code ?? `HTTP ${res.status}`);
      throw new BackendError(
        code,
        `Cloudflare Error: ${code}: ${first?.message ?? (res.text.slice(0, 200) || "no message")}`,
        {
          retryable: res.status === 429 || res.status >= 500,
        },
      );
    }
    return env.result ?? null;
  }
  const call = <T>(method: string, url: string, body?: unknown) =>
    withRetries(() => once<T>(method, url, body), 3, 500);

  return {
    find: async (r: Omit<CloudflareRecord, "id">): Promise<CloudflareRecord | null> => {
      const q = new URLSearchParams({ type: r.type, name: r.name, content: r.content });
      return (await call<CloudflareRecord[]>("GET", `${base}?${q}`))?.[0] ?? null;
    },
    create: async (r: Omit<CloudflareRecord, "id">, comment: string): Promise<CloudflareRecord> =>
      (await call<CloudflareRecord>("POST", base, { ...r, ttl: 1, proxied: false, comment }))!,
    remove: async (id: string): Promise<void> => {
      await call("DELETE", `${base}/${encodeURIComponent(id)}`);
    },
  };
}
