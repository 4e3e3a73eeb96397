/**
 * @module
 * `/api/v1/projects/:project/service-tokens`: the tokens that open the project's services on its
 * gateways (`gps_<id>_<secret>`, `schema/tokens.ts`). Any member creates, lists and revokes them;
 * they belong to the project, not to their creator. The secret is shown once and only its SHA-256 is
 * stored; every change reaches the project's live gateways as a new configuration version.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { randomBase62, sha256Hex } from "../../core/crypto.ts";
import { serviceTokens } from "../../core/db/schema.ts";
import { CreateServiceTokenRequest, type ServiceToken, type ServiceTokenCreated } from "../../schema/api.ts";
import type { AppEnv } from "../auth.ts";
import { refreshGatewayTokens } from "../auth-propagation.ts";
import { notFound } from "../errors.ts";
import { readJson } from "../http.ts";

const listed = (row: typeof serviceTokens.$inferSelect): ServiceToken => ({
  id: row.id,
  description: row.description,
  created_by: row.createdBy,
  created_at: row.createdAt,
});

export const serviceTokensRoutes = new Hono<AppEnv>()
  .post("/", async (c) => {
    const p = c.get("project");
    const { description } = await readJson(c, CreateServiceTokenRequest);
    const id = randomBase62(12);
    const secret = randomBase62(32);
    const [row] = await drizzle(c.env.DB)
      .insert(serviceTokens)
      .values({
        id,
        projectId: p.id,
        secretHash: await sha256Hex(secret),
        description: description ?? null,
        createdBy: c.get("principal").name,
      })
      .returning();
    await refreshGatewayTokens(c.env, [p.id]);
    const body: ServiceTokenCreated = { ...listed(row!), token: `gps_${id}_${secret}` };
    return c.json(body, 201);
  })
  .get("/", async (c) => {
    const rows = await drizzle(c.env.DB)
      .select()
      .from(serviceTokens)
      .where(and(eq(serviceTokens.projectId, c.get("project").id), isNull(serviceTokens.revokedAt)))
      .orderBy(desc(serviceTokens.createdAt));
    return c.json({ service_tokens: rows.map(listed) });
  })
  .delete("/:id", async (c) => {
    const p = c.get("project");
    const id = c.req.param("id");
    const revoked = await drizzle(c.env.DB)
      .update(serviceTokens)
      .set({ revokedAt: new Date().toISOString() })
      .where(and(eq(serviceTokens.id, id), eq(serviceTokens.projectId, p.id), isNull(serviceTokens.revokedAt)))
      .returning({ id: serviceTokens.id });
    if (revoked.length === 0) throw notFound(`Service token ${id} does not exist in project ${p.name}`);
    await refreshGatewayTokens(c.env, [p.id]);
    return c.body(null, 204);
  });
