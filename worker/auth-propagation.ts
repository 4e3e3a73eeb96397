/**
 * @module
 * Member and token changes reach gateways as new configuration versions: after such a change the
 * Worker asks every live gateway of the affected projects to re-read its project's tokens.
 */
import { and, eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { gateways, members } from "./db/schema.ts";
import type { Env } from "./env.ts";

export async function refreshGatewayTokens(env: Env, projectIds: string[]): Promise<void> {
  if (projectIds.length === 0) return;
  const rows = await drizzle(env.DB)
    .select({ objectId: gateways.objectId })
    .from(gateways)
    .where(and(inArray(gateways.projectId, projectIds), eq(gateways.toBeDeleted, false)));
  await Promise.all(rows.map((r) => env.GATEWAYS.get(env.GATEWAYS.idFromString(r.objectId)).refreshAuthTokens()));
}

/** The projects a user's tokens open. */
export async function projectsOfUser(env: Env, userId: string): Promise<string[]> {
  const rows = await drizzle(env.DB)
    .select({ projectId: members.projectId })
    .from(members)
    .where(eq(members.userId, userId));
  return rows.map((r) => r.projectId);
}
