/**
 * @module
 * `/api/v1/agent`: what gateway agents call. Not user-authenticated: registration presents the
 * replica's one-time bootstrap secret, everything after it a short-lived JWT scoped to the replica.
 */
import { Hono } from "hono";
import { AgentHeartbeatRequest, AgentRegisterRequest } from "../../schema/agent.ts";
import { signAgentToken, verifyAgentToken } from "../agent-tokens.ts";
import type { AppEnv } from "../auth.ts";
import type { Env } from "../env.ts";
import { unauthorized, unwrap } from "../errors.ts";
import { readJson } from "../http.ts";

const stubFor = (env: Env, objectId: string) => env.GATEWAYS.get(env.GATEWAYS.idFromString(objectId));

async function agentClaims(env: Env, header: string | undefined) {
  const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!token) throw unauthorized("missing agent token");
  return verifyAgentToken(env, token);
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
      }),
    );
    return c.body(null, 204);
  })
  .post("/token", async (c) => {
    const claims = await agentClaims(c.env, c.req.header("authorization"));
    const identity = unwrap(await stubFor(c.env, claims.objectId).agentSeen(claims, null));
    return c.json(await signAgentToken(c.env, { objectId: claims.objectId, ...identity }));
  });
