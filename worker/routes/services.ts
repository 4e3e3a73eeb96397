/**
 * @module
 * `/api/v1/projects/:project/services`: services on the project's gateways and their replicas'
 * endpoints. The D1 catalog says which gateway serves a name; that gateway's object owns the rest.
 */
import { and, eq, gt, gte } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import * as v from "valibot";
import { events, gateways as gatewaysTable, projects, services as servicesTable } from "../../core/db/schema.ts";
import type { Env } from "../../core/env.ts";
import { parseOrThrow } from "../../schema/issues.ts";
import { planService, serviceGateway, serviceMoveRefusal } from "../../schema/plan.ts";
import { echoSpec } from "../../schema/plan-envelope.ts";
import { parseServiceConfiguration, ReplicaEndpoint, ReplicaId } from "../../schema/service.ts";
import { PutReplicaRequest, type Service, ServiceApplyRequest, ServicePlanRequest } from "../../schema/service-api.ts";
import {
  METRICS_RANGES,
  MetricsRangeParam,
  type ScalingDecision,
  type ServiceMetrics,
} from "../../schema/service-metrics.ts";
import { type AppEnv, type ProjectContext, requireProjectAdmin } from "../auth.ts";
import { notFound } from "../errors.ts";
import { readJson } from "../http.ts";
import { unwrap } from "../outcomes.ts";
import { cursorKeys, pageRequest, takePage } from "../paging.ts";
import { gatewayStub } from "./gateways.ts";

/** The gateway a service file points at: its `gateway`, else the project's live default (`schema/plan.ts`). */
async function resolveGateway(env: Env, project: ProjectContext, name: string | null | undefined): Promise<string> {
  const db = drizzle(env.DB);
  const found = name
    ? await db
        .select({ name: gatewaysTable.name, gone: gatewaysTable.toBeDeleted })
        .from(gatewaysTable)
        .where(and(eq(gatewaysTable.projectId, project.id), eq(gatewaysTable.name, name)))
        .get()
    : await db
        .select({ name: gatewaysTable.name, gone: gatewaysTable.toBeDeleted })
        .from(projects)
        .innerJoin(gatewaysTable, eq(gatewaysTable.id, projects.defaultGatewayId))
        .where(eq(projects.id, project.id))
        .get();
  return unwrap(serviceGateway(name, found ?? null, project.name));
}

/** Which gateway serves `name`, or null. */
async function servingGateway(env: Env, project: ProjectContext, name: string): Promise<string | null> {
  const row = await drizzle(env.DB)
    .select({ gateway: servicesTable.gatewayName })
    .from(servicesTable)
    .where(and(eq(servicesTable.projectId, project.id), eq(servicesTable.name, name)))
    .get();
  return row?.gateway ?? null;
}

async function requireService(
  env: Env,
  project: ProjectContext,
  name: string,
): Promise<{ gateway: string; service: Service }> {
  const gateway = await servingGateway(env, project, name);
  const service = gateway ? await gatewayStub(env, project.id, gateway).getService(name) : null;
  if (!gateway || !service) throw notFound(`Service ${name} does not exist`);
  return { gateway, service };
}

/** The `service.scaling` events of `service` on `gateway` since `since` (ISO), oldest first. */
async function scalingDecisions(
  env: Env,
  project: ProjectContext,
  gateway: string,
  service: string,
  since: string,
): Promise<ScalingDecision[]> {
  const rows = await drizzle(env.DB)
    .select({ data: events.data, created_at: events.createdAt })
    .from(events)
    .where(
      and(
        eq(events.projectId, project.id),
        eq(events.gatewayName, gateway),
        eq(events.type, "service.scaling"),
        gte(events.createdAt, since),
      ),
    )
    .orderBy(events.id)
    .limit(1000);
  const out: ScalingDecision[] = [];
  for (const r of rows) {
    const d = JSON.parse(r.data ?? "{}") as {
      service?: string;
      role?: ScalingDecision["role"];
      desired_replicas?: number;
      previous_desired_replicas?: number | null;
      reason?: string;
    };
    if (d.service !== service || typeof d.desired_replicas !== "number") continue;
    out.push({
      at: r.created_at,
      ...(d.role ? { role: d.role } : {}),
      from: d.previous_desired_replicas ?? null,
      to: d.desired_replicas,
      reason: d.reason ?? "",
    });
  }
  return out;
}

/**
 * The services of a page, by name: one call per gateway on the page, which views only the named
 * services (a page costs its page, not the gateway's size).
 */
async function pageServices(
  env: Env,
  project: ProjectContext,
  page: readonly { name: string; gateway: string }[],
): Promise<Map<string, Service>> {
  const byGateway = new Map<string, string[]>();
  for (const r of page) byGateway.set(r.gateway, [...(byGateway.get(r.gateway) ?? []), r.name]);
  const found = await Promise.all(
    [...byGateway].map(
      async ([gateway, names]) => (await gatewayStub(env, project.id, gateway).servicesNamed(names)) as Service[],
    ),
  );
  return new Map(found.flat().map((s) => [s.name, s]));
}

const replicaId = (id: string) => parseOrThrow(v.object({ id: ReplicaId }), { id }).id;

export const servicesRoutes = new Hono<AppEnv>()
  .post("/plan", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { spec } = await readJson(c, ServicePlanRequest);
    const config = parseServiceConfiguration(spec.configuration);
    const gateway = await resolveGateway(c.env, project, config.gateway);
    const serving = await servingGateway(c.env, project, config.name);
    const current = serving ? await gatewayStub(c.env, project.id, serving).getService(config.name) : null;
    return c.json({
      project_name: project.name,
      user: c.get("principal").name,
      spec: echoSpec(spec),
      effective_spec: { ...echoSpec(spec), configuration: config },
      current_resource: current,
      ...planService(current, config, gateway),
    });
  })
  .post("/apply", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { plan, force } = await readJson(c, ServiceApplyRequest);
    const config = parseServiceConfiguration(plan.spec.configuration);
    const gateway = await resolveGateway(c.env, project, config.gateway);
    const serving = await servingGateway(c.env, project, config.name);
    const move = serviceMoveRefusal(config.name, serving, gateway);
    if (move) unwrap(move);
    const result = unwrap(
      await gatewayStub(c.env, project.id, gateway).applyService({
        configuration: config,
        configurationPath: plan.spec.configuration_path ?? null,
        currentResource: plan.current_resource ?? null,
        force,
        actor: c.get("principal").name,
      }),
    );
    return c.json(result.service, result.created ? 201 : 200);
  })
  .get("/", async (c) => {
    const project = c.get("project");
    const { limit, after } = pageRequest(c, "services", cursorKeys.name);
    if (limit === null) {
      // The whole list, as before paging: one call per gateway.
      const rows = await drizzle(c.env.DB)
        .selectDistinct({ gateway: servicesTable.gatewayName })
        .from(servicesTable)
        .where(eq(servicesTable.projectId, project.id));
      const lists = await Promise.all(rows.map((r) => gatewayStub(c.env, project.id, r.gateway).listServices()));
      const all = lists.flat().sort((a, b) => a.name.localeCompare(b.name));
      return c.json({ project: project.name, services: all });
    }
    // A page: the next names in the D1 catalog (services_project_name's order), then the services
    // from their gateways.
    const rows = await drizzle(c.env.DB)
      .select({ name: servicesTable.name, gateway: servicesTable.gatewayName })
      .from(servicesTable)
      .where(and(eq(servicesTable.projectId, project.id), after ? gt(servicesTable.name, after[0]) : undefined))
      .orderBy(servicesTable.name)
      .limit(limit + 1);
    const page = takePage(c, "services", rows, limit, (r) => [r.name]);
    const byName = await pageServices(c.env, project, page);
    // A name the catalog still has but its gateway just removed is left out (the page may be short).
    const services = page.map((r) => byName.get(r.name)).filter((s) => s !== undefined);
    return c.json({ project: project.name, services });
  })
  .get("/:name/metrics", async (c) => {
    const project = c.get("project");
    const name = c.req.param("name");
    const { range } = parseOrThrow(v.object({ range: MetricsRangeParam }), { range: c.req.query("range") ?? "1h" });
    const gateway = await servingGateway(c.env, project, name);
    const points = gateway ? await gatewayStub(c.env, project.id, gateway).serviceMetrics(name, range) : null;
    if (!gateway || !points) throw notFound(`Service ${name} does not exist`);
    const since = new Date(Date.now() - METRICS_RANGES[range].seconds * 1000).toISOString();
    const body: ServiceMetrics = {
      service: name,
      gateway,
      range,
      step_seconds: METRICS_RANGES[range].step,
      points,
      decisions: await scalingDecisions(c.env, project, gateway, name, since),
    };
    return c.json(body);
  })
  .get("/:name", async (c) => c.json((await requireService(c.env, c.get("project"), c.req.param("name"))).service))
  .delete("/:name", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { gateway } = await requireService(c.env, project, c.req.param("name"));
    const removed = unwrap(
      await gatewayStub(c.env, project.id, gateway).deleteService(c.req.param("name"), c.get("principal").name),
    );
    return c.json(removed);
  })
  .put("/:name/replicas/:id", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const { url, role, bootstrap_port } = await readJson(c, PutReplicaRequest);
    const endpoint = parseOrThrow(ReplicaEndpoint, { id: c.req.param("id"), url, role, bootstrap_port });
    const { gateway } = await requireService(c.env, project, c.req.param("name"));
    const result = unwrap(
      await gatewayStub(c.env, project.id, gateway).putServiceReplica(
        c.req.param("name"),
        endpoint,
        c.get("principal").name,
      ),
    );
    return c.json(result.service, result.created ? 201 : 200);
  })
  .delete("/:name/replicas/:id", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const id = replicaId(c.req.param("id"));
    const { gateway } = await requireService(c.env, project, c.req.param("name"));
    return c.json(
      unwrap(
        await gatewayStub(c.env, project.id, gateway).removeServiceReplica(
          c.req.param("name"),
          id,
          c.get("principal").name,
        ),
      ),
    );
  });
