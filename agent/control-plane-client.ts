/**
 * @module
 * The agent's side of the control plane's agent API (`/api/v1/agent/…`): register with the one-time
 * bootstrap secret, heartbeat and refresh with the agent token. Failures are typed so the caller can
 * tell "retry soon" (unreachable, 5xx, 429) from "the token or secret was refused" (401).
 */
import type * as v from "valibot";
import type { AgentHeartbeatRequest, AgentRegisterRequest, AgentTokenResponse } from "../schema/agent.ts";

export type RegisterBody = v.InferInput<typeof AgentRegisterRequest>;
export type HeartbeatBody = v.InferInput<typeof AgentHeartbeatRequest>;

/** The control plane could not be reached or did not answer in time. */
export class ControlPlaneUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ControlPlaneUnreachableError";
  }
}

/** The control plane answered with an error status (or a body the agent cannot use). */
export class ControlPlaneHttpError extends Error {
  readonly status: number;
  readonly code: string | null;
  constructor(status: number, code: string | null, message: string) {
    super(message);
    this.name = "ControlPlaneHttpError";
    this.status = status;
    this.code = code;
  }
}

export const isUnauthorized = (error: unknown): boolean =>
  error instanceof ControlPlaneHttpError && error.status === 401;

/** Worth retrying soon: the control plane is down, overloaded or broken rather than refusing us. */
export const isTransient = (error: unknown): boolean =>
  error instanceof ControlPlaneUnreachableError ||
  (error instanceof ControlPlaneHttpError && (error.status >= 500 || error.status === 429 || error.status === 408));

export interface ControlPlaneClientOptions {
  /** Per request; a hung control plane must not stall heartbeats forever. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class ControlPlaneClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(baseUrl: string, options: ControlPlaneClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  async register(body: RegisterBody, signal: AbortSignal): Promise<AgentTokenResponse> {
    return parseTokenResponse(await this.call("/api/v1/agent/register", null, body, signal));
  }

  async heartbeat(token: string, body: HeartbeatBody, signal: AbortSignal): Promise<void> {
    await this.call("/api/v1/agent/heartbeat", token, body, signal);
  }

  async refresh(token: string, signal: AbortSignal): Promise<AgentTokenResponse> {
    return parseTokenResponse(await this.call("/api/v1/agent/token", token, {}, signal));
  }

  private async call(route: string, token: string | null, body: unknown, signal: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.baseUrl + route, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      text = await response.text();
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ControlPlaneUnreachableError(`POST ${route}: ${cause}`, { cause: error });
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Proxies and crashed Workers answer HTML; the status still says what happened.
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = typeof error?.code === "string" ? error.code : null;
      const message = typeof error?.message === "string" ? error.message : text.slice(0, 200) || response.statusText;
      throw new ControlPlaneHttpError(response.status, code, `POST ${route}: ${response.status} ${message}`);
    }
    return json;
  }
}

function parseTokenResponse(json: unknown): AgentTokenResponse {
  const r = json as Partial<AgentTokenResponse> | null;
  if (
    typeof r?.token !== "string" ||
    r.token.length === 0 ||
    typeof r.expires_at !== "number" ||
    typeof r.gateway_id !== "string" ||
    typeof r.replica_num !== "number"
  ) {
    // Treated like a 5xx: a control plane mid-deploy may answer garbage briefly.
    throw new ControlPlaneHttpError(502, "bad_token_response", "the control plane answered without a usable token");
  }
  return { token: r.token, expires_at: r.expires_at, gateway_id: r.gateway_id, replica_num: r.replica_num };
}
