/**
 * @module
 * `/api/v1/projects`: projects, their members, their backends' credentials and ACME settings.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import * as v from "valibot";
import { backendCredentials, gateways, members, projects, users } from "../../core/db/schema.ts";
import { removeSealed, storeSealed } from "../../core/db/sealed-settings.ts";
import { BackendTypeParam, CreateProjectRequest, type Project, SetMemberRequest } from "../../schema/api.ts";
import { BACKEND_CREDENTIALS } from "../../schema/backend-credentials.ts";
import { BACKENDS } from "../../schema/gateway.ts";
import { parseOrThrow } from "../../schema/issues.ts";
import { type AppEnv, projectAccess, requireGlobalAdmin, requireProjectAdmin } from "../auth.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import { readJson } from "../http.ts";
import { acmeRoutes } from "./acme.ts";
import { dnsProviders } from "./dns-providers.ts";
import { gatewayEvents, gateways as gatewayRoutes } from "./gateways.ts";
import { serviceTokensRoutes } from "./service-tokens.ts";
import { servicesRoutes } from "./services.ts";
import { webhooksRoutes } from "./webhooks.ts";

async function defaultGatewayName(db: ReturnType<typeof drizzle>, id: string | null): Promise<string | null> {
  if (!id) return null;
  const row = await db
    .select({ name: gateways.name, gone: gateways.toBeDeleted })
    .from(gateways)
    .where(eq(gateways.id, id))
    .get();
  return row && !row.gone ? row.name : null;
}

const backendParam = (value: string) => parseOrThrow(v.object({ type: BackendTypeParam }), { type: value }).type;

/** Routes under `/projects/:project`, after the caller's membership is checked. */
const project = new Hono<AppEnv>()
  .use(projectAccess)
  .get("/", async (c) => {
    const p = c.get("project");
    const db = drizzle(c.env.DB);
    const row = await db.select().from(projects).where(eq(projects.id, p.id)).get();
    const body: Project = {
      name: p.name,
      role: p.role,
      default_gateway: await defaultGatewayName(db, p.defaultGatewayId),
      created_at: row?.createdAt ?? "",
    };
    return c.json(body);
  })
  .get("/members", async (c) => {
    const rows = await drizzle(c.env.DB)
      .select({ user: users.name, role: members.role, created_at: members.createdAt })
      .from(members)
      .innerJoin(users, eq(users.id, members.userId))
      .where(eq(members.projectId, c.get("project").id));
    return c.json({ members: rows });
  })
  .put("/members/:user", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const { role } = await readJson(c, SetMemberRequest);
    const db = drizzle(c.env.DB);
    const user = await db
      .select()
      .from(users)
      .where(eq(users.name, c.req.param("user")))
      .get();
    if (!user) throw notFound(`User ${c.req.param("user")} does not exist`);
    await db
      .insert(members)
      .values({ projectId: p.id, userId: user.id, role })
      .onConflictDoUpdate({ target: [members.projectId, members.userId], set: { role } });
    return c.json({ user: user.name, role });
  })
  .delete("/members/:user", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const db = drizzle(c.env.DB);
    const user = await db
      .select()
      .from(users)
      .where(eq(users.name, c.req.param("user")))
      .get();
    if (!user) throw notFound(`User ${c.req.param("user")} does not exist`);
    await db.delete(members).where(and(eq(members.projectId, p.id), eq(members.userId, user.id)));
    return c.body(null, 204);
  })
  .get("/backends", async (c) => {
    const rows = await drizzle(c.env.DB)
      .select({ type: backendCredentials.type, updatedAt: backendCredentials.updatedAt })
      .from(backendCredentials)
      .where(eq(backendCredentials.projectId, c.get("project").id));
    const byType = new Map(rows.map((r) => [r.type, r.updatedAt]));
    return c.json({
      backends: BACKENDS.map((type) => ({
        type,
        configured: type === "local" ? Boolean(c.env.LOCAL_HOST_DAEMON_URL) : byType.has(type),
        updated_at: byType.get(type) ?? null,
      })),
    });
  })
  .put("/backends/:type", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const type = backendParam(c.req.param("type"));
    if (type === "local") throw badRequest("the local backend needs no credentials", "type");
    const credentials = await readJson(c, BACKEND_CREDENTIALS[type]);
    const now = await storeSealed(c.env, p.id, type, credentials);
    return c.json({ type, configured: true, updated_at: now });
  })
  .delete("/backends/:type", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    await removeSealed(c.env, p.id, backendParam(c.req.param("type")));
    return c.body(null, 204);
  })
  .route("/acme", acmeRoutes)
  .route("/gateways", gatewayRoutes)
  .route("/dns", dnsProviders)
  .route("/services", servicesRoutes)
  .route("/service-tokens", serviceTokensRoutes)
  .route("/events", gatewayEvents)
  .route("/webhooks", webhooksRoutes);

export const projectsRoutes = new Hono<AppEnv>()
  .post("/", async (c) => {
    const principal = c.get("principal");
    requireGlobalAdmin(principal);
    const { name } = await readJson(c, CreateProjectRequest);
    const db = drizzle(c.env.DB);
    const id = crypto.randomUUID();
    const inserted = await db.insert(projects).values({ id, name }).onConflictDoNothing().returning();
    if (inserted.length === 0) throw conflict("already_exists", `Project ${name} already exists`, "name");
    const body: Project = { name, role: "admin", default_gateway: null, created_at: inserted[0]!.createdAt };
    return c.json(body, 201);
  })
  .get("/", async (c) => {
    const principal = c.get("principal");
    const db = drizzle(c.env.DB);
    const rows = principal.globalAdmin
      ? (await db.select().from(projects)).map((p) => ({ ...p, role: "admin" as const }))
      : await db
          .select({
            id: projects.id,
            name: projects.name,
            defaultGatewayId: projects.defaultGatewayId,
            createdAt: projects.createdAt,
            role: members.role,
          })
          .from(projects)
          .innerJoin(members, eq(members.projectId, projects.id))
          .where(eq(members.userId, principal.userId ?? ""));
    const list: Project[] = [];
    for (const p of rows) {
      list.push({
        name: p.name,
        role: p.role,
        default_gateway: await defaultGatewayName(db, p.defaultGatewayId),
        created_at: p.createdAt,
      });
    }
    return c.json({ projects: list });
  })
  .route("/:project", project);
