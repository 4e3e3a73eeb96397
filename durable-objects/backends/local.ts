/**
 * @module
 * The `local` backend: calls the local host daemon's instance API over loopback, exactly as the AWS
 * backend calls EC2. A host is an agent process started with the user-data a cloud VM would get.
 */
import type { LocalErrorBody, LocalInstance } from "../../schema/local-host.ts";
import { BackendError, type GatewayBackend, type InstanceInfo, type InstanceSpec } from "./types.ts";

export interface LocalBackendOptions {
  daemonUrl: string;
  token: string;
  /** Per call; the daemon answers in milliseconds unless it is wedged. */
  timeoutMs?: number;
}

export function localBackend(options: LocalBackendOptions): GatewayBackend {
  const base = options.daemonUrl.replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 15_000;

  async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; data: T | null }> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw new BackendError("Unreachable", `local host daemon unreachable at ${base}: ${String(cause)}`, {
        retryable: true,
        cause,
      });
    }
    const text = await res.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (res.ok || res.status === 404) return { status: res.status, data: data as T };
    const err = (data as LocalErrorBody | null)?.error;
    const message = `local host daemon: ${err?.code ?? res.status}: ${err?.message ?? (text.slice(0, 200) || res.statusText)}`;
    throw new BackendError(err?.code ?? `HTTP${res.status}`, message, {
      retryable: res.status >= 500 || res.status === 429,
    });
  }

  const toInfo = (i: LocalInstance): InstanceInfo => ({
    instanceId: i.instance_id,
    state: i.state,
    hostname: i.hostname,
    region: "local",
    backendData: { http_port: i.http_port, https_port: i.https_port },
  });

  return {
    type: "local",
    async ensureNetwork() {
      // Loopback needs no network; a health call surfaces a missing daemon as a retryable error early.
      await call("GET", "/v1/health");
      return {};
    },
    async createInstance(spec: InstanceSpec) {
      const { status, data } = await call<LocalInstance>("POST", "/v1/instances", {
        client_token: spec.clientToken,
        name: spec.name,
        user_data: JSON.stringify(spec.bootstrap),
        tags: spec.tags,
      });
      if (status === 404 || !data)
        throw new BackendError("NotFound", "local host daemon: no instance API", { retryable: false });
      return toInfo(data);
    },
    async findInstance(spec) {
      const { data } = await call<{ instances: LocalInstance[] }>(
        "GET",
        `/v1/instances?client_token=${encodeURIComponent(spec.clientToken)}`,
      );
      const found = data?.instances.find((i) => i.client_token === spec.clientToken);
      return found ? toInfo(found) : null;
    },
    async describeInstance(instanceId: string) {
      const { status, data } = await call<LocalInstance>("GET", `/v1/instances/${encodeURIComponent(instanceId)}`);
      if (status === 404 || !data) return null;
      return toInfo(data);
    },
    async terminateInstance(instanceId: string) {
      await call("DELETE", `/v1/instances/${encodeURIComponent(instanceId)}`);
    },
  };
}
