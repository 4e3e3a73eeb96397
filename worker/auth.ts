/**
 * @module
 * Bearer-token authentication and project roles. API tokens look like `gpt_<id>_<secret>`: the
 * public id finds the row, and only a SHA-256 of the secret is stored and compared in constant time.
 * The global admin token comes from the `ADMIN_TOKEN` secret. Service tokens (`gps_…`,
 * `schema/tokens.ts`) open services on gateways only and are refused here.
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { createMiddleware } from "hono/factory";
import { digestsEqual, randomBase62, secretsEqual, sha256Hex } from "../core/crypto.ts";
import { apiTokens, members, projects, users } from "../core/db/schema.ts";
import type { Env } from "../core/env.ts";
import type { Role } from "../schema/api.ts";
import { API_TOKEN_PATTERN, SERVICE_TOKEN_ON_API, SERVICE_TOKEN_PATTERN } from "../schema/tokens.ts";
import { forbidden, notFound, unauthorized } from "./errors.ts";

export interface Principal {
  userId: string | null;
  name: string;
  globalAdmin: boolean;
}

export interface ProjectContext {
  id: string;
  name: string;
  defaultGatewayId: string | null;
  role: Role | null;
}

export type AppEnv = { Bindings: Env; Variables: { principal: Principal; project: ProjectContext } };

/** Mints a new API token for a user; returns the token (shown once) and the row to store. */
export async function mintToken(userId: string, description?: string) {
  const id = randomBase62(12);
  const secret = randomBase62(32);
  return {
    token: `gpt_${id}_${secret}`,
    row: { id, userId, secretHash: await sha256Hex(secret), description: description ?? null },
  };
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearer(header: string | undefined): string | null {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1] ?? null;
}

/** Resolves a token to its principal, or null. Exported for the agent-less callers and tests. */
export async function authenticate(env: Env, token: string): Promise<Principal | null> {
  if (env.ADMIN_TOKEN && (await secretsEqual(token, env.ADMIN_TOKEN))) {
    return { userId: null, name: "admin", globalAdmin: true };
  }
  const match = token.match(API_TOKEN_PATTERN);
  if (!match) return null;
  const [, id, secret] = match as unknown as [string, string, string];
  const db = drizzle(env.DB);
  const row = await db
    .select({ hash: apiTokens.secretHash, userId: users.id, name: users.name, globalAdmin: users.globalAdmin })
    .from(apiTokens)
    .innerJoin(users, eq(users.id, apiTokens.userId))
    .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .get();
  // Hash even when the row is missing so a miss costs the same as a wrong secret.
  const presented = await sha256Hex(secret);
  if (!row || !digestsEqual(presented, row.hash)) return null;
  return { userId: row.userId, name: row.name, globalAdmin: row.globalAdmin };
}

/** Requires a valid bearer token on every route it guards. */
export const requireAuth = createMiddleware<AppEnv>(async function requireAuth(c, next) {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw unauthorized();
  // Said outright, so nobody is left guessing why a token that opens services does not open this.
  if (SERVICE_TOKEN_PATTERN.test(token)) throw unauthorized(SERVICE_TOKEN_ON_API);
  const principal = await authenticate(c.env, token);
  if (!principal) throw unauthorized("invalid or revoked token");
  c.set("principal", principal);
  await next();
});

/** Loads `:project` and the caller's role in it; members see it, others get 403, missing 404. */
export const projectAccess = createMiddleware<AppEnv>(async function projectAccess(c, next) {
  const name = c.req.param("project") ?? "";
  const principal = c.get("principal");
  const db = drizzle(c.env.DB);
  const project = await db.select().from(projects).where(eq(projects.name, name)).get();
  if (!project) throw notFound(`Project ${name} does not exist`);
  let role: Role | null = null;
  if (principal.userId) {
    const member = await db
      .select({ role: members.role })
      .from(members)
      .where(and(eq(members.projectId, project.id), eq(members.userId, principal.userId)))
      .get();
    role = member?.role ?? null;
  }
  if (principal.globalAdmin) role = "admin";
  if (!role) throw forbidden(`You are not a member of project ${name}`);
  c.set("project", { id: project.id, name: project.name, defaultGatewayId: project.defaultGatewayId, role });
  await next();
});

/** Throws 403 unless the caller is a project admin (or a global admin). */
export function requireProjectAdmin(project: ProjectContext): void {
  if (project.role !== "admin") throw forbidden(`This action needs the admin role in project ${project.name}`);
}

export function requireGlobalAdmin(principal: Principal): void {
  if (!principal.globalAdmin) throw forbidden("This action needs a global admin token");
}
