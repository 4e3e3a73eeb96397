/**
 * Helpers for the Workers-pool tests: API calls through `SELF`, fresh projects and users, and
 * access to a gateway's Durable Object.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { expect } from "vitest";
import type { ServerMessage } from "../../schema/agent-protocol.ts";
import type { Gateway } from "../../schema/api.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import type { Service } from "../../schema/service-api.ts";
import { until } from "../support/until.ts";

export const ADMIN = env.ADMIN_TOKEN;
const BASE = "http://gateplane.test";

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
}

export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  token: string | null = ADMIN,
): Promise<ApiResult<T>> {
  const res = await SELF.fetch(`${BASE}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

let counter = 0;
export const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`;

export async function newProject(): Promise<string> {
  const name = unique("p");
  const res = await api("POST", "/api/v1/projects", { name });
  if (res.status !== 201) throw new Error(`project: ${JSON.stringify(res.body)}`);
  return name;
}

export async function newUser(project: string | null, role: "admin" | "member" | null): Promise<string> {
  const name = unique("u");
  const res = await api<{ token: string }>("POST", "/api/v1/users", { name });
  if (project && role) await api("PUT", `/api/v1/projects/${project}/members/${name}`, { role });
  return res.body.token;
}

export const localConfig = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "gateway",
  name,
  backend: "local",
  domain: "localhost",
  ...extra,
});

export async function plan(project: string, configuration: unknown, token = ADMIN) {
  return api("POST", `/api/v1/projects/${project}/gateways/plan`, { spec: { configuration } }, token);
}

/** Plans then applies, as the CLI does. */
export async function applyConfig(project: string, configuration: unknown, token = ADMIN): Promise<ApiResult<Gateway>> {
  const p = await plan(project, configuration, token);
  if (p.status !== 200) return p as ApiResult<Gateway>;
  return api(
    "POST",
    `/api/v1/projects/${project}/gateways/apply`,
    {
      plan: { spec: { configuration }, current_resource: p.body.current_resource },
    },
    token,
  );
}

export async function getGateway(project: string, name: string) {
  return api<Gateway>("GET", `/api/v1/projects/${project}/gateways/${name}`);
}

export async function projectId(project: string): Promise<string> {
  const row = await env.DB.prepare("SELECT id FROM projects WHERE name = ?").bind(project).first<{ id: string }>();
  return row!.id;
}

export async function gatewayStub(project: string, name: string) {
  return env.GATEWAYS.get(env.GATEWAYS.idFromName(`${await projectId(project)}/${name}`));
}

/** Reads rows of the object's own SQLite storage. */
export async function objectSql<T>(project: string, name: string, query: string, ...binds: unknown[]): Promise<T[]> {
  const stub = await gatewayStub(project, name);
  return runInDurableObject(stub, (_obj, state) => state.storage.sql.exec(query, ...binds).toArray() as T[]);
}

/** Polls until `fn` returns something truthy (the one polling helper, test/support/until.ts). */
export const waitFor = <T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000) =>
  until<T>(what, fn, timeoutMs, 50);

export async function faults(set?: Record<string, number>): Promise<Record<string, number>> {
  const res = await fetch(env.FAULTS_URL, {
    method: set ? "POST" : "GET",
    body: set ? JSON.stringify(set) : undefined,
  });
  return res.json();
}

export async function daemonInstances(): Promise<{ instance_id: string; client_token: string; state: string }[]> {
  const url = env.LOCAL_HOST_DAEMON_URL!;
  const res = await fetch(`${url}/v1/instances`, {
    headers: { authorization: `Bearer ${env.LOCAL_HOST_DAEMON_TOKEN}` },
  });
  return ((await res.json()) as { instances: { instance_id: string; client_token: string; state: string }[] })
    .instances;
}

/** Registers a replica's agent with its bootstrap secret, as the agent process would. */
export async function registerAgent(project: string, name: string, replicaNum = 0) {
  const [row] = await objectSql<{ bootstrap_secret: string | null }>(
    project,
    name,
    "SELECT bootstrap_secret FROM replicas WHERE replica_num = ? ORDER BY created_ms DESC LIMIT 1",
    replicaNum,
  );
  const g = (await getGateway(project, name)).body;
  const stub = await gatewayStub(project, name);
  return {
    secret: row?.bootstrap_secret ?? "",
    res: await api<{ token: string; expires_at: number }>(
      "POST",
      "/api/v1/agent/register",
      {
        object_id: stub.id.toString(),
        gateway_id: g.id,
        replica_num: replicaNum,
        bootstrap_secret: row?.bootstrap_secret ?? "x".repeat(43),
        version: "test",
      },
      null,
    ),
  };
}

export const servicesPath = (project: string) => `/api/v1/projects/${project}/services`;

/** Plans and applies a service configuration; a refused plan is returned as is. */
export async function applyService(project: string, configuration: Record<string, unknown>) {
  const plan = await api("POST", `${servicesPath(project)}/plan`, { spec: { configuration } });
  if (plan.status !== 200) return plan;
  return api<Service>("POST", `${servicesPath(project)}/apply`, {
    plan: { spec: { configuration }, current_resource: plan.body.current_resource },
  });
}

/** An agent's WebSocket: the configuration documents it received, in order, and a sender. */
export async function connectAgent(token: string) {
  const res = await SELF.fetch(`${BASE}/api/v1/agent/connect`, {
    headers: { upgrade: "websocket", authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const configs: ConfigDocument[] = [];
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data as string) as ServerMessage;
    if (m.type === "config") configs.push(m.document);
  });
  ws.accept();
  return { ws, configs, send: (m: unknown) => ws.send(JSON.stringify(m)) };
}

/** A gateway whose replicas' agents registered (through the API: the pool's hosts run no agent); their tokens. */
export async function runningGateway(project: string, name: string, replicas = 1): Promise<string[]> {
  expect((await applyConfig(project, localConfig(name, { replicas }))).status).toBe(201);
  await waitFor("instances", async () => {
    const g = (await getGateway(project, name)).body;
    return g.replicas.length === replicas && g.replicas.every((r) => r.instance_id);
  });
  const tokens: string[] = [];
  for (let n = 0; n < replicas; n++) {
    const { res } = await registerAgent(project, name, n);
    expect(res.status).toBe(200);
    tokens.push(res.body.token);
  }
  await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
  return tokens;
}

/**
 * Autoscaling decisions are taken at most every 5 s per service (agents report that often): move the
 * last one back instead of sleeping, so the next report is evaluated.
 */
export async function ageDecision(project: string, gateway: string, ms = 5_000): Promise<void> {
  await objectSql(project, gateway, "UPDATE service_scaling SET last_evaluated_at = last_evaluated_at - ?", ms);
  // A PD service scaled per role keeps one decision per role (durable-objects/role-scaling.ts).
  await objectSql(project, gateway, "UPDATE service_role_scaling SET last_evaluated_at = last_evaluated_at - ?", ms);
}

/** The data of the project's `service.scaling` events, oldest first. */
export async function scalingEvents(project: string): Promise<Record<string, unknown>[]> {
  const res = await api<{ events: { type: string; data: Record<string, unknown> }[] }>(
    "GET",
    `/api/v1/projects/${project}/events?type=service.scaling`,
  );
  expect(res.status).toBe(200);
  return res.body.events.map((e) => e.data);
}
