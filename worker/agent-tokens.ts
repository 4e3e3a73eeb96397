/**
 * @module
 * Short-lived ES256 JWTs for gateway agents, scoped to one replica of one gateway. The private key
 * is the `AGENT_SIGNING_KEY` secret; its public half is served as JWKS so anything can verify them.
 */
import { type CryptoKey, exportJWK, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import type { Env } from "../core/env.ts";
import { AGENT_TOKEN_AUDIENCE, AGENT_TOKEN_TTL_SECONDS, type AgentTokenResponse } from "../schema/agent.ts";
import { unauthorized } from "./errors.ts";

const ISSUER = "gateplane";

export interface AgentClaims {
  /** Durable Object id of the gateway (routes the agent's calls). */
  objectId: string;
  gatewayId: string;
  replicaId: string;
  replicaNum: number;
}

export interface VerifiedAgentClaims extends AgentClaims {
  /** Expiry, seconds since the epoch. */
  exp: number;
}

interface Keys {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicKey: CryptoKey;
}

let cached: { source: string; keys: Promise<Keys> } | null = null;

function keys(env: Env): Promise<Keys> {
  if (cached?.source === env.AGENT_SIGNING_KEY) return cached.keys;
  const load = async (): Promise<Keys> => {
    if (!env.AGENT_SIGNING_KEY) throw new Error("AGENT_SIGNING_KEY is not set");
    const jwk = JSON.parse(env.AGENT_SIGNING_KEY) as JWK;
    const privateKey = (await importJWK(jwk, "ES256")) as CryptoKey;
    const { d: _d, ...pub } = jwk;
    const kid = jwk.kid ?? "agent";
    const publicKey = (await importJWK({ ...pub, kid }, "ES256")) as CryptoKey;
    return {
      kid,
      privateKey,
      publicKey,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
    };
  };
  cached = { source: env.AGENT_SIGNING_KEY, keys: load() };
  return cached.keys;
}

export async function jwks(env: Env): Promise<{ keys: JWK[] }> {
  return { keys: [(await keys(env)).publicJwk] };
}

export async function signAgentToken(env: Env, claims: AgentClaims): Promise<AgentTokenResponse> {
  const k = await keys(env);
  const now = Math.floor(Date.now() / 1000);
  const exp = now + AGENT_TOKEN_TTL_SECONDS;
  const token = await new SignJWT({ obj: claims.objectId, gw: claims.gatewayId, rn: claims.replicaNum })
    .setProtectedHeader({ alg: "ES256", kid: k.kid, typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(AGENT_TOKEN_AUDIENCE)
    .setSubject(claims.replicaId)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(k.privateKey);
  return { token, expires_at: exp, gateway_id: claims.gatewayId, replica_num: claims.replicaNum };
}

/**
 * How long after expiry a token may still buy a new one. A host that was off for longer than a
 * token's life must not be locked out (its one-time bootstrap secret is spent); the object still
 * refuses replicas that are no longer active.
 */
const REFRESH_GRACE_SECONDS = 30 * 24 * 3600;

export async function verifyAgentToken(
  env: Env,
  token: string,
  options: { forRefresh?: boolean } = {},
): Promise<VerifiedAgentClaims> {
  const k = await keys(env);
  try {
    const { payload } = await jwtVerify(token, k.publicKey, {
      issuer: ISSUER,
      audience: AGENT_TOKEN_AUDIENCE,
      algorithms: ["ES256"],
      ...(options.forRefresh ? { clockTolerance: REFRESH_GRACE_SECONDS } : {}),
    });
    const { obj, gw, rn, sub, exp } = payload as {
      obj?: unknown;
      gw?: unknown;
      rn?: unknown;
      sub?: unknown;
      exp?: number;
    };
    if (typeof obj !== "string" || !/^[0-9a-f]{64}$/.test(obj) || typeof gw !== "string" || typeof rn !== "number") {
      throw new Error("malformed claims");
    }
    return { objectId: obj, gatewayId: gw, replicaId: String(sub), replicaNum: rn, exp: exp ?? 0 };
  } catch {
    throw unauthorized("invalid or expired agent token");
  }
}
