/**
 * @module
 * `/api/v1/projects/:project/acme`: the project's ACME settings (directory, External Account
 * Binding, contact address). Sealed like backends' credentials, in the same table under the kind
 * `acme`; GET never returns the HMAC key. Every change reaches the project's gateways as a new
 * configuration version.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import * as v from "valibot";
import { acmeAad } from "../../core/aad.ts";
import { openJson } from "../../core/crypto.ts";
import { backendCredentials, gateways } from "../../core/db/schema.ts";
import { removeSealed, storeSealed } from "../../core/db/sealed-settings.ts";
import type { Env } from "../../core/env.ts";
import { ACME_CREDENTIAL_TYPE, acmeView, ProjectAcmeRequest } from "../../schema/acme.ts";
import { type AppEnv, requireProjectAdmin } from "../auth.ts";
import { readJson } from "../http.ts";

const isAcme = (projectId: string) =>
  and(eq(backendCredentials.projectId, projectId), eq(backendCredentials.type, ACME_CREDENTIAL_TYPE));

/** Asks every live gateway of the project to re-read the settings. */
async function refreshGatewayAcme(env: Env, projectId: string): Promise<void> {
  const rows = await drizzle(env.DB)
    .select({ objectId: gateways.objectId })
    .from(gateways)
    .where(and(eq(gateways.projectId, projectId), eq(gateways.toBeDeleted, false)));
  await Promise.all(rows.map((r) => env.GATEWAYS.get(env.GATEWAYS.idFromString(r.objectId)).refreshAcme()));
}

export const acmeRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    const p = c.get("project");
    const row = await drizzle(c.env.DB).select().from(backendCredentials).where(isAcme(p.id)).get();
    if (!row) return c.json(acmeView(null, null));
    const settings = v.parse(ProjectAcmeRequest, await openJson(c.env.CREDENTIALS_KEY, row, acmeAad(p.id)));
    return c.json(acmeView(settings, row.updatedAt));
  })
  .put("/", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const settings = await readJson(c, ProjectAcmeRequest);
    const now = await storeSealed(c.env, p.id, ACME_CREDENTIAL_TYPE, settings);
    await refreshGatewayAcme(c.env, p.id);
    return c.json(acmeView(settings, now));
  })
  .delete("/", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    await removeSealed(c.env, p.id, ACME_CREDENTIAL_TYPE);
    await refreshGatewayAcme(c.env, p.id);
    return c.body(null, 204);
  });
