/**
 * @module
 * Service-token changes reach gateways as new configuration versions: after one, the Worker asks
 * every live gateway of the project to re-read its service tokens. (Members and API tokens are not
 * in the document: they do not open services.)
 */
import { and, eq, inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { gateways } from "../core/db/schema.ts";
import type { Env } from "../core/env.ts";

export async function refreshGatewayTokens(env: Env, projectIds: string[]): Promise<void> {
  if (projectIds.length === 0) return;
  const rows = await drizzle(env.DB)
    .select({ objectId: gateways.objectId })
    .from(gateways)
    .where(and(inArray(gateways.projectId, projectIds), eq(gateways.toBeDeleted, false)));
  await Promise.all(rows.map((r) => env.GATEWAYS.get(env.GATEWAYS.idFromString(r.objectId)).refreshAuthTokens()));
}
