/**
 * @module
 * `/api/v1/agent`: what gateway agents call. Not user-authenticated: registration presents the
 * replica's one-time bootstrap secret, everything after it a short-lived JWT scoped to the replica.
 */
import { Hono } from "hono";
import * as v from "valibot";
import type { Env } from "../../core/env.ts";
import { AgentHeartbeatRequest, AgentRegisterRequest, AgentScaleFromZeroRequest } from "../../schema/agent.ts";
import { MAX_NACK_ERROR, ServiceRejections } from "../../schema/agent-protocol.ts";
import { mapping } from "../../schema/issues.ts";
import { signAgentToken, verifyAgentToken } from "../agent-tokens.ts";
import { type AppEnv, bearer } from "../auth.ts";
import { badRequest, unauthorized } from "../errors.ts";
import { readJson } from "../http.ts";
import { unwrap } from "../outcomes.ts";

/**
 * The gateway object an agent names. A well-formed id minted by another namespace (another
 * deployment, another binding) makes `idFromString` throw: that is the caller's mistake, a 400.
 */
function stubFor(env: Env, objectId: string) {
  let id: DurableObjectId;
  try {
    id = env.GATEWAYS.idFromString(objectId);
  } catch {
    throw badRequest("not the id of a gateway of this control plane", "object_id");
  }
  return env.GATEWAYS.get(id);
}

async function agentClaims(env: Env, header: string | undefined, options: { forRefresh?: boolean } = {}) {
  const token = bearer(header);
  if (!token) throw unauthorized("missing agent token");
  return verifyAgentToken(env, token, options);
}

const AckRequest = mapping({
  version: v.pipe(v.number("expected the configuration version"), v.integer(), v.minValue(1)),
  error: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(MAX_NACK_ERROR))), null),
  /** Services an applied version does not serve as configured (absent from older agents). */
  rejected: ServiceRejections,
});

/** `If-None-Match: "12"` → 12 (the version the agent already has). */
function knownVersion(header: string | undefined): number | null {
  const m = header?.match(/^\s*(?:W\/)?"(\d+)"\s*$/);
  return m ? Number(m[1]) : null;
}

/** `?since=12` → 12; absent → null (a whole document, as older agents pull); anything else is refused. */
function sinceVersion(raw: string | undefined): number | null {
  if (raw === undefined) return null;
  if (!/^\d{1,15}$/.test(raw))
    throw badRequest("expected the configuration version the agent holds (0 or more)", "since");
  return Number(raw);
}

export const agentRoutes = new Hono<AppEnv>()
  .post("/register", async (c) => {
    const body = await readJson(c, AgentRegisterRequest);
    const identity = unwrap(
      await stubFor(c.env, body.object_id).registerAgent({
        gatewayId: body.gateway_id,
        replicaNum: body.replica_num,
        secret: body.bootstrap_secret,
        version: body.version ?? null,
      }),
    );
    return c.json(await signAgentToken(c.env, { objectId: body.object_id, ...identity }));
  })
  .post("/heartbeat", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    const report = await readJson(c, AgentHeartbeatRequest);
    unwrap(
      await stubFor(c.env, claims.objectId).agentSeen(claims, {
        version: report.version ?? null,
        status: report.status,
        message: report.message ?? null,
        ...(report.routers ? { routers: report.routers } : {}),
      }),
    );
    return c.body(null, 204);
  })
  .get("/connect", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: { code: "upgrade_required", message: "connect with a WebSocket" } }, 426);
    }
    // The object trusts these headers: only this Worker can reach it, after verifying the JWT.
    const headers = new Headers(c.req.raw.headers);
    headers.set("x-gateplane-gateway-id", claims.gatewayId);
    headers.set("x-gateplane-replica-id", claims.replicaId);
    headers.set("x-gateplane-replica-num", String(claims.replicaNum));
    headers.set("x-gateplane-token-exp", String(claims.exp));
    return stubFor(c.env, claims.objectId).fetch(new Request(c.req.raw.url, { headers }));
  })
  .get("/config", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    const since = sinceVersion(c.req.query("since"));
    if (since !== null) {
      // An agent that takes deltas: what changed since the version it applied (`schema/config-delta.ts`).
      const answer = unwrap(await stubFor(c.env, claims.objectId).configSince(claims, since));
      if (!answer) return c.body(null, 304);
      c.header("etag", `"${answer.type === "config" ? answer.document.version : answer.delta.version}"`);
      return c.json(answer);
    }
    const doc = unwrap(
      await stubFor(c.env, claims.objectId).configFor(claims, knownVersion(c.req.header("if-none-match"))),
    );
    if (!doc) return c.body(null, 304);
    c.header("etag", `"${doc.version}"`);
    return c.json(doc);
  })
  .post("/ack", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    const { version, error, rejected } = await readJson(c, AckRequest);
    unwrap(await stubFor(c.env, claims.objectId).recordConfigResult(claims, version, error ?? null, rejected));
    return c.body(null, 204);
  })
  /** The HTTP fallback of the WebSocket's `scale_from_zero`: a request is held for a service without replicas. */
  .post("/scale-from-zero", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    const { service } = await readJson(c, AgentScaleFromZeroRequest);
    const { changed } = unwrap(await stubFor(c.env, claims.objectId).scaleFromZero(claims, service));
    return c.json({ changed });
  })
  .post("/token", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"), { forRefresh: true });
    const identity = unwrap(await stubFor(c.env, claims.objectId).agentSeen(claims, null));
    return c.json(await signAgentToken(c.env, { objectId: claims.objectId, ...identity }));
  });
