/**
 * @module
 * `/api/v1/users` and `/api/v1/tokens`: users, their API tokens (shown once, stored hashed), and
 * `/api/v1/me`.
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type Context, Hono } from "hono";
import { apiTokens, users } from "../../core/db/schema.ts";
import { CreateTokenRequest, CreateUserRequest } from "../../schema/api.ts";
import { type AppEnv, mintToken, requireGlobalAdmin } from "../auth.ts";
import { conflict, forbidden, notFound } from "../errors.ts";
import { readJson } from "../http.ts";

/** The user named in the path, if the caller may act on them (themselves, or anyone for a global admin). */
async function pathUser(c: Context<AppEnv>, refusal: string) {
  const principal = c.get("principal");
  const user = await drizzle(c.env.DB)
    .select()
    .from(users)
    .where(eq(users.name, c.req.param("user") ?? ""))
    .get();
  if (!user) throw notFound(`User ${c.req.param("user")} does not exist`);
  if (!principal.globalAdmin && principal.userId !== user.id) throw forbidden(refusal);
  return user;
}

export const usersRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    requireGlobalAdmin(c.get("principal"));
    const rows = await drizzle(c.env.DB)
      .select({ name: users.name, global_admin: users.globalAdmin, created_at: users.createdAt })
      .from(users)
      .orderBy(users.name);
    return c.json({ users: rows });
  })
  // What `token revoke` needs to be usable: ids, what they are for, whether still in use. Never secrets.
  .get("/:user/tokens", async (c) => {
    const user = await pathUser(c, "You can only list your own tokens");
    const tokens = await drizzle(c.env.DB)
      .select({
        id: apiTokens.id,
        description: apiTokens.description,
        created_at: apiTokens.createdAt,
        last_used_at: apiTokens.lastUsedAt,
        revoked_at: apiTokens.revokedAt,
      })
      .from(apiTokens)
      .where(eq(apiTokens.userId, user.id))
      .orderBy(apiTokens.createdAt, apiTokens.id);
    return c.json({ user: user.name, tokens });
  })
  .post("/", async (c) => {
    requireGlobalAdmin(c.get("principal"));
    const { name } = await readJson(c, CreateUserRequest);
    const db = drizzle(c.env.DB);
    const id = crypto.randomUUID();
    const inserted = await db.insert(users).values({ id, name }).onConflictDoNothing().returning();
    if (inserted.length === 0) throw conflict("already_exists", `User ${name} already exists`, "name");
    const { token, row } = await mintToken(id, "created with the user");
    const [created] = await db.insert(apiTokens).values(row).returning();
    return c.json({ id: row.id, user: name, token, created_at: created!.createdAt }, 201);
  })
  .post("/:user/tokens", async (c) => {
    const db = drizzle(c.env.DB);
    const user = await pathUser(c, "You can only create tokens for yourself");
    const { description } = await readJson(c, CreateTokenRequest);
    const { token, row } = await mintToken(user.id, description);
    const [created] = await db.insert(apiTokens).values(row).returning();
    return c.json({ id: row.id, user: user.name, token, created_at: created!.createdAt }, 201);
  });

export const tokensRoutes = new Hono<AppEnv>().delete("/:id", async (c) => {
  const principal = c.get("principal");
  const db = drizzle(c.env.DB);
  const token = await db
    .select()
    .from(apiTokens)
    .where(eq(apiTokens.id, c.req.param("id")))
    .get();
  if (!token) throw notFound(`Token ${c.req.param("id")} does not exist`);
  if (!principal.globalAdmin && principal.userId !== token.userId)
    throw forbidden("You can only revoke your own tokens");
  await db
    .update(apiTokens)
    .set({ revokedAt: new Date().toISOString() })
    .where(and(eq(apiTokens.id, token.id), isNull(apiTokens.revokedAt)));
  return c.body(null, 204);
});

export const meRoutes = new Hono<AppEnv>().get("/", (c) => {
  const p = c.get("principal");
  return c.json({ user: p.name, global_admin: p.globalAdmin });
});
