/**
 * @module
 * A stand-in for the control plane's agent API (`/api/v1/agent/register|heartbeat|token`) for tests:
 * validates bodies with the shared schemas, enforces the one-time bootstrap secret and bearer tokens,
 * records every request, and injects faults (5xx on register, revoked tokens).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import * as v from "valibot";
import { AgentHeartbeatRequest, AgentRegisterRequest, type AgentTokenResponse } from "../../schema/agent.ts";

export interface RecordedRequest {
  route: string;
  authorization: string | null;
  body: unknown;
  at: number;
}

export interface FakeControlPlaneOptions {
  bootstrapSecret: string;
  /** Lifetime of issued tokens, in seconds. */
  tokenTtlSeconds?: number;
}

export interface FakeControlPlane {
  url: string;
  requests: RecordedRequest[];
  /** Tokens issued so far, oldest first. */
  issued: string[];
  /** The next `count` registrations answer `status` (default 503) before being looked at. */
  failRegistrations(count: number, status?: number): void;
  /** Every token issued so far is refused from now on (401), like a key rotation or a revoked host. */
  revokeTokens(): void;
  /** Lets the bootstrap secret be used once more (as if the control plane had issued a new one). */
  rearmSecret(): void;
  routes(route: string): RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeControlPlane(options: FakeControlPlaneOptions): Promise<FakeControlPlane> {
  const ttl = options.tokenTtlSeconds ?? 900;
  const requests: RecordedRequest[] = [];
  const issued: string[] = [];
  const valid = new Map<string, { expiresAt: number; gatewayId: string; replicaNum: number }>();
  let secretUsed = false;
  let failures = { count: 0, status: 503 };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(data);
  };
  const refuse = (res: ServerResponse, code: string, message: string) => send(res, 401, { error: { code, message } });

  const issue = (gatewayId: string, replicaNum: number): AgentTokenResponse => {
    // Opaque to the agent; a JWT in the real control plane.
    const token = `eyJ.${randomBytes(12).toString("base64url")}.sig`;
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    valid.set(token, { expiresAt, gatewayId, replicaNum });
    issued.push(token);
    return { token, expires_at: expiresAt, gateway_id: gatewayId, replica_num: replicaNum };
  };

  const bearer = (req: IncomingMessage) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const entry = token === undefined ? undefined : valid.get(token);
    return entry && entry.expiresAt > Date.now() / 1000 ? entry : undefined;
  };

  const server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      return send(res, 400, { error: { code: "invalid_json", message: "invalid JSON" } });
    }
    const route = req.url ?? "/";
    requests.push({ route, authorization: req.headers.authorization ?? null, body, at: Date.now() });
    if (req.method !== "POST") return send(res, 405, { error: { code: "method_not_allowed", message: req.method } });

    if (route === "/api/v1/agent/register") {
      if (failures.count > 0) {
        failures.count--;
        return send(res, failures.status, { error: { code: "unavailable", message: "injected failure" } });
      }
      const parsed = v.safeParse(AgentRegisterRequest, body);
      if (!parsed.success)
        return send(res, 400, { error: { code: "invalid_request", message: parsed.issues[0].message } });
      if (parsed.output.bootstrap_secret !== options.bootstrapSecret || secretUsed) {
        return refuse(res, "invalid_bootstrap_secret", "bootstrap secret is wrong or already used");
      }
      secretUsed = true;
      return send(res, 200, issue(parsed.output.gateway_id, parsed.output.replica_num));
    }
    if (route === "/api/v1/agent/heartbeat") {
      if (!bearer(req)) return refuse(res, "invalid_token", "agent token refused");
      const parsed = v.safeParse(AgentHeartbeatRequest, body);
      if (!parsed.success)
        return send(res, 400, { error: { code: "invalid_request", message: parsed.issues[0].message } });
      return send(res, 200, { ok: true });
    }
    if (route === "/api/v1/agent/token") {
      const entry = bearer(req);
      if (!entry) return refuse(res, "invalid_token", "agent token refused");
      return send(res, 200, issue(entry.gatewayId, entry.replicaNum));
    }
    return send(res, 404, { error: { code: "not_found", message: route } });
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    issued,
    failRegistrations(count, status = 503) {
      failures = { count, status };
    },
    revokeTokens() {
      valid.clear();
    },
    rearmSecret() {
      secretUsed = false;
    },
    routes: (route) => requests.filter((r) => r.route === `/api/v1/agent/${route}`),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
