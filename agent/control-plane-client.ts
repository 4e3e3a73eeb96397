/**
 * @module
 * The agent's side of the control plane's agent API (`/api/v1/agent/…`) over plain HTTP: register
 * with the one-time bootstrap secret; heartbeat, refresh the token, fetch the config document and
 * report its outcome with the agent token (the WebSocket is `config-socket.ts`). Failures are typed so
 * the caller can tell "retry soon" (unreachable, 5xx, 429) from "the token or secret was refused" (401).
 */
import type * as v from "valibot";
import type { AgentHeartbeatRequest, AgentRegisterRequest, AgentTokenResponse } from "../schema/agent.ts";
import type { ServiceRejection } from "../schema/agent-protocol.ts";

export type RegisterBody = v.InferInput<typeof AgentRegisterRequest>;
export type HeartbeatBody = v.InferInput<typeof AgentHeartbeatRequest>;

/** Body of `POST /api/v1/agent/ack`: the version the HTTP fallback fetched and null (applied) or why not. */
export interface AckBody {
  version: number;
  error: string | null;
  /** Services of an applied version that are not served as configured (an older control plane ignores it). */
  rejected: ServiceRejection[];
}

/** Answer of `GET /api/v1/agent/config`. */
export type ConfigFetch =
  /** 304: the applied version is still the current one. */
  | { kind: "unchanged" }
  /** 404 or 204: the control plane has no document for this host (yet). */
  | { kind: "none" }
  /** 200: a document to validate (raw JSON) and its ETag. */
  | { kind: "document"; document: unknown; etag: string | null }
  /** 200 to a pull with `since`: what changed since that version (raw JSON, `schema/config-delta.ts`). */
  | { kind: "delta"; delta: unknown; etag: string | null };

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

  /**
   * The current document unless it is `appliedVersion` (conditional on the ETag `"<version>"`). With
   * `deltas` (and a version applied) it asks `?since=<appliedVersion>`: the answer is then a
   * `ConfigAnswer`, a delta or a whole document; a control plane that predates deltas answers a bare
   * document, which is taken as one.
   */
  async fetchConfig(
    token: string,
    appliedVersion: number | null,
    signal: AbortSignal,
    deltas = false,
  ): Promise<ConfigFetch> {
    const since = deltas && appliedVersion !== null ? `?since=${appliedVersion}` : "";
    const route = `/api/v1/agent/config${since}`;
    const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${token}` };
    if (appliedVersion !== null) headers["if-none-match"] = `"${appliedVersion}"`;
    let answer: { response: Response; json: unknown };
    try {
      answer = await this.send("GET", route, headers, undefined, signal);
    } catch (error) {
      // 404: no document yet, or a control plane older than this route; either way nothing to apply.
      if (error instanceof ControlPlaneHttpError && error.status === 404) return { kind: "none" };
      throw error;
    }
    const { response, json } = answer;
    if (response.status === 304) return { kind: "unchanged" };
    if (response.status === 204) return { kind: "none" };
    if (json === undefined) {
      // A 200 whose body is not JSON is a broken deploy or a captive proxy: worth retrying, not NACKing.
      throw new ControlPlaneHttpError(502, "bad_config_response", `GET ${route}: the answer is not JSON`);
    }
    const etag = response.headers.get("etag");
    if (since) {
      const answer = json as { type?: unknown; document?: unknown; delta?: unknown } | null;
      if (answer?.type === "config_delta") return { kind: "delta", delta: answer.delta, etag };
      if (answer?.type === "config") return { kind: "document", document: answer.document, etag };
    }
    return { kind: "document", document: json, etag };
  }

  async ack(token: string, body: AckBody, signal: AbortSignal): Promise<void> {
    await this.call("/api/v1/agent/ack", token, body, signal);
  }

  /** A request is held for `service`, scaled to zero (the WebSocket's `scale_from_zero`). */
  async scaleFromZero(token: string, service: string, signal: AbortSignal): Promise<void> {
    await this.call("/api/v1/agent/scale-from-zero", token, { service }, signal);
  }

  private async call(route: string, token: string | null, body: unknown, signal: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const { json } = await this.send("POST", route, headers, JSON.stringify(body), signal);
    return json ?? null;
  }

  /** One request; throws on transport failures and error statuses (304 is not an error). */
  private async send(
    method: "GET" | "POST",
    route: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<{ response: Response; json: unknown }> {
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.baseUrl + route, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      text = await response.text();
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ControlPlaneUnreachableError(`${method} ${route}: ${cause}`, { cause: error });
    }
    /** undefined: no body, or not JSON. */
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // Proxies and crashed Workers answer HTML; the status still says what happened.
    }
    if (!response.ok && response.status !== 304) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof error?.code === "string" ? error.code : null;
      const message = typeof error?.message === "string" ? error.message : text.slice(0, 200) || response.statusText;
      throw new ControlPlaneHttpError(response.status, code, `${method} ${route}: ${response.status} ${message}`);
    }
    return { response, json };
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
