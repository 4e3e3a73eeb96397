/**
 * @module
 * `/api/v1/projects/:project/gateways`: plan, apply, list, get, delete, set default. Validation and
 * project rules happen here; each gateway's state changes inside its GatewayObject.
 */
import { and, desc, eq, lt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { backendCredentials, events, gateways as gatewaysTable, projects } from "../../core/db/schema.ts";
import { batch } from "../../core/db/statements.ts";
import type { Env } from "../../core/env.ts";
import { ApplyRequest, DeleteGatewaysRequest, type Gateway, type GatewayPlan, PlanRequest } from "../../schema/api.ts";
import { BACKENDS_WITHOUT_CREDENTIALS } from "../../schema/backend-credentials.ts";
import { EVENT_TYPES, type EventType } from "../../schema/events.ts";
import { type GatewayConfiguration, parseGatewayConfiguration } from "../../schema/gateway.ts";
import { busyRefusal } from "../../schema/gateway-busy.ts";
import { servicesRefusal } from "../../schema/gateway-deletion.ts";
import { PAGE_LIMIT_DEFAULT } from "../../schema/paging.ts";
import { planGateway } from "../../schema/plan.ts";
import { echoSpec } from "../../schema/plan-envelope.ts";
import { type AppEnv, type ProjectContext, requireProjectAdmin } from "../auth.ts";
import { ApiError, badRequest, conflict, notFound } from "../errors.ts";
import { readJson } from "../http.ts";
import { randomGatewayName } from "../names.ts";
import { failureError, unwrap } from "../outcomes.ts";
import { cursorKeys, pageRequest, takePage } from "../paging.ts";

export const gatewayStub = (env: Env, projectId: string, name: string) =>
  env.GATEWAYS.get(env.GATEWAYS.idFromName(`${projectId}/${name}`));

async function projectDefault(env: Env, projectId: string): Promise<string | null> {
  const row = await drizzle(env.DB)
    .select({ id: projects.defaultGatewayId })
    .from(projects)
    .where(eq(projects.id, projectId))
    .get();
  return row?.id ?? null;
}

/** `default` is a project fact (D1), not a gateway one: fill it in for the viewer. */
const withDefault = (g: Gateway, defaultId: string | null): Gateway => {
  const isDefault = g.id === defaultId && !g.to_be_deleted;
  return { ...g, default: isDefault, configuration: { ...g.configuration, default: isDefault } };
};

async function describe(env: Env, project: ProjectContext, name: string): Promise<Gateway | null> {
  const snapshot = await gatewayStub(env, project.id, name).describe();
  if (!snapshot) return null;
  return withDefault(snapshot, await projectDefault(env, project.id));
}

async function requireGateway(env: Env, project: ProjectContext, name: string): Promise<Gateway> {
  const g = await describe(env, project, name);
  if (!g) throw notFound(`Gateway ${name} does not exist`);
  return g;
}

/** Rejects backends the project cannot use (dstack: "Backend must also be configured in the project"). */
async function checkBackend(env: Env, project: ProjectContext, config: GatewayConfiguration): Promise<void> {
  if (config.backend === "local") {
    if (!env.LOCAL_HOST_DAEMON_URL) {
      throw badRequest("the local backend is not enabled on this control plane (start it with npm start)", "backend");
    }
    return;
  }
  if (BACKENDS_WITHOUT_CREDENTIALS.includes(config.backend)) return;
  const row = await drizzle(env.DB)
    .select({ type: backendCredentials.type })
    .from(backendCredentials)
    .where(and(eq(backendCredentials.projectId, project.id), eq(backendCredentials.type, config.backend)))
    .get();
  if (!row) {
    throw badRequest(
      `the ${config.backend} backend is not configured in project ${project.name}; configure it with PUT /api/v1/projects/${project.name}/backends/${config.backend}`,
      "backend",
    );
  }
}

async function uniqueName(env: Env, project: ProjectContext): Promise<string> {
  const db = drizzle(env.DB);
  for (let i = 0; i < 20; i++) {
    const name = randomGatewayName();
    const taken = await db
      .select({ id: gatewaysTable.id })
      .from(gatewaysTable)
      .where(and(eq(gatewaysTable.projectId, project.id), eq(gatewaysTable.name, name)))
      .get();
    if (!taken && !(await gatewayStub(env, project.id, name).describe())) return name;
  }
  throw new ApiError(503, "name_exhausted", "could not generate a free gateway name; set name in the configuration");
}

/** `?cascade=true|false` (absent: false). */
function cascadeQuery(value: string | undefined): boolean {
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw badRequest(`cascade: expected true or false, got ${JSON.stringify(value.slice(0, 40))}`, "cascade");
}

/** The gateway exists, and deleting it takes no service unless `cascade` allows it. */
async function requireDeletable(env: Env, project: ProjectContext, name: string, cascade: boolean): Promise<void> {
  const g = await requireGateway(env, project, name);
  if (cascade || g.to_be_deleted) return;
  const services = await gatewayStub(env, project.id, name).serviceNames();
  if (services.length > 0) throw ApiError.from(servicesRefusal(name, services, "delete"));
}

export const gateways = new Hono<AppEnv>()
  .post("/plan", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { spec } = await readJson(c, PlanRequest);
    const config = parseGatewayConfiguration(spec.configuration);
    await checkBackend(c.env, project, config);
    const current = config.name ? await describe(c.env, project, config.name) : null;
    const busy = current ? busyRefusal(current) : null;
    if (busy) throw failureError(busy);
    const effective = { ...config, name: config.name ?? (await uniqueName(c.env, project)) };
    const plan: GatewayPlan = {
      project_name: project.name,
      user: c.get("principal").name,
      spec: echoSpec(spec),
      effective_spec: { ...echoSpec(spec), configuration: effective },
      current_resource: current,
      ...planGateway(current?.configuration ?? null, effective),
    };
    return c.json(plan);
  })
  .post("/apply", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { plan, force, recreate, cascade } = await readJson(c, ApplyRequest);
    const config = parseGatewayConfiguration(plan.spec.configuration);
    await checkBackend(c.env, project, config);
    const name = config.name ?? (await uniqueName(c.env, project));
    const result = unwrap(
      await gatewayStub(c.env, project.id, name).apply({
        projectId: project.id,
        projectName: project.name,
        configuration: { ...config, name },
        configurationPath: plan.spec.configuration_path ?? null,
        currentResource: plan.current_resource ?? null,
        force,
        recreate,
        cascade,
        actor: c.get("principal").name,
        controlPlaneUrl: c.env.PUBLIC_URL || new URL(c.req.url).origin,
      }),
    );
    const gateway = withDefault(result.gateway, await projectDefault(c.env, project.id));
    return c.json(gateway, result.created ? 201 : 200);
  })
  .get("/", async (c) => {
    const project = c.get("project");
    // Oldest first, (created_at, id) breaking ties: the gateways_project_created index's order.
    // Without limit and cursor the whole list, as before paging.
    const { limit, after } = pageRequest(c, "gateways", cursorKeys.createdAndId);
    const query = drizzle(c.env.DB)
      .select({ snapshot: gatewaysTable.snapshot, createdAt: gatewaysTable.createdAt, id: gatewaysTable.id })
      .from(gatewaysTable)
      .where(
        and(
          eq(gatewaysTable.projectId, project.id),
          after ? sql`(${gatewaysTable.createdAt}, ${gatewaysTable.id}) > (${after[0]}, ${after[1]})` : undefined,
        ),
      )
      .orderBy(gatewaysTable.createdAt, gatewaysTable.id);
    const rows = limit === null ? await query : await query.limit(limit + 1);
    const page = limit === null ? rows : takePage(c, "gateways", rows, limit, (r) => [r.createdAt, r.id]);
    const defaultId = await projectDefault(c.env, project.id);
    return c.json({ project: project.name, gateways: page.map((r) => withDefault(r.snapshot as Gateway, defaultId)) });
  })
  .post("/delete", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { names, cascade } = await readJson(c, DeleteGatewaysRequest);
    const unique = [...new Set(names)];
    // All or nothing: check every name before marking any.
    for (const name of unique) await requireDeletable(c.env, project, name, cascade);
    const deleted: Gateway[] = [];
    for (const name of unique) {
      deleted.push(
        unwrap(await gatewayStub(c.env, project.id, name).markForDeletion(c.get("principal").name, cascade)),
      );
    }
    const defaultId = await projectDefault(c.env, project.id);
    return c.json({ gateways: deleted.map((g) => withDefault(g, defaultId)) }, 202);
  })
  .get("/:name", async (c) => c.json(await requireGateway(c.env, c.get("project"), c.req.param("name"))))
  .delete("/:name", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const name = c.req.param("name");
    const cascade = cascadeQuery(c.req.query("cascade"));
    await requireDeletable(c.env, project, name, cascade);
    const g = unwrap(await gatewayStub(c.env, project.id, name).markForDeletion(c.get("principal").name, cascade));
    return c.json(withDefault(g, await projectDefault(c.env, project.id)), 202);
  })
  .post("/:name/set-default", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const g = await requireGateway(c.env, project, c.req.param("name"));
    if (g.to_be_deleted)
      throw conflict("being_deleted", `Gateway ${g.name} is being deleted and cannot be set default`);
    const previous = await projectDefault(c.env, project.id);
    if (previous !== g.id) {
      const actor = c.get("principal").name;
      const [update] = await batch(c.env.DB, [
        sql`UPDATE ${projects} SET default_gateway_id = ${g.id} WHERE ${projects.id} = ${project.id}
          AND EXISTS (SELECT 1 FROM ${gatewaysTable} WHERE ${gatewaysTable.id} = ${g.id} AND ${gatewaysTable.toBeDeleted} = 0)`,
        sql`INSERT INTO ${events} (project_id, gateway_id, gateway_name, actor, message)
          SELECT ${project.id}, ${g.id}, ${g.name}, ${actor}, 'Gateway set as project default'
          WHERE EXISTS (SELECT 1 FROM ${projects} WHERE ${projects.id} = ${project.id} AND default_gateway_id = ${g.id})`,
        sql`INSERT INTO ${events} (project_id, gateway_id, gateway_name, actor, message)
          SELECT ${project.id}, ${gatewaysTable.id}, ${gatewaysTable.name}, ${actor}, 'Gateway unset as project default'
          FROM ${gatewaysTable} WHERE ${gatewaysTable.id} = ${previous ?? ""}
          AND EXISTS (SELECT 1 FROM ${projects} WHERE ${projects.id} = ${project.id} AND default_gateway_id = ${g.id})`,
      ]);
      if (!update?.meta.changes)
        throw conflict("being_deleted", `Gateway ${g.name} is being deleted and cannot be set default`);
    }
    return c.json({ ...g, default: true, configuration: { ...g.configuration, default: true } });
  });

export const gatewayEvents = new Hono<AppEnv>().get("/", async (c) => {
  const project = c.get("project");
  const gateway = c.req.query("gateway");
  const type = c.req.query("type");
  if (type !== undefined && !EVENT_TYPES.includes(type as EventType)) {
    throw badRequest(`type: expected one of ${EVENT_TYPES.join(", ")}`, "type");
  }
  // Newest first by id (the events_project index), the newest 100 without limit as before paging;
  // each page's body lists its events oldest first, as before.
  const { limit: asked, after } = pageRequest(c, "events", cursorKeys.id);
  const limit = asked ?? PAGE_LIMIT_DEFAULT;
  const rows = await drizzle(c.env.DB)
    .select({
      id: events.id,
      gateway_name: events.gatewayName,
      actor: events.actor,
      message: events.message,
      type: events.type,
      data: events.data,
      sequence: events.sequence,
      created_at: events.createdAt,
    })
    .from(events)
    .where(
      and(
        eq(events.projectId, project.id),
        gateway ? eq(events.gatewayName, gateway) : undefined,
        type ? eq(events.type, type) : undefined,
        after ? lt(events.id, after[0]) : undefined,
      ),
    )
    .orderBy(desc(events.id))
    .limit(limit + 1);
  const page = takePage(c, "events", rows, limit, (r) => [r.id]);
  return c.json({
    project: project.name,
    events: page.reverse().map((r) => ({ ...r, data: r.data === null ? null : JSON.parse(r.data) })),
  });
});
