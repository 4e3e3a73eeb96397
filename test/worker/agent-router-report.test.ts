import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import {
  api,
  applyConfig,
  getGateway,
  localConfig,
  newProject,
  objectSql,
  registerAgent,
  servicesPath,
  waitFor,
} from "./helpers.ts";

// The router modes an agent reports (issue 5): stored per gateway replica by the GatewayObject,
// shown in the gateway's replicas and in each service's gateway replicas; agents that say nothing
// about routers (older ones) change nothing.

const svc = servicesPath;
const NOT_INSTALLED = { service: "echo", mode: "built-in", reason: "sglang router not installed on this host" };
const EXTERNAL = { service: "echo", mode: "external", reason: null };

async function setUp() {
  const project = await newProject();
  const name = "gw-router";
  expect((await applyConfig(project, localConfig(name, { router: { type: "sglang" } }))).status).toBe(201);
  await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  const { res } = await registerAgent(project, name);
  expect(res.status).toBe(200);
  await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
  const configuration = { type: "service", name: "echo", https: false };
  const plan = await api("POST", `${svc(project)}/plan`, { spec: { configuration } });
  expect(plan.status).toBe(200);
  const applied = await api<Service>("POST", `${svc(project)}/apply`, {
    plan: { spec: { configuration }, current_resource: plan.body.current_resource },
  });
  expect(applied.status).toBe(201);
  return { project, name, token: res.body.token as string };
}

const gatewayRouters = async (project: string, name: string) =>
  (await getGateway(project, name)).body.replicas[0]?.routers;
const serviceRouter = async (project: string) =>
  (await api<Service>("GET", `${svc(project)}/echo`)).body.gateway_replicas[0]?.router;

describe("router modes reported by agents", () => {
  it("shows the heartbeat's report on the gateway and the service; a report without routers keeps it", async () => {
    const { project, name, token } = await setUp();
    expect(await gatewayRouters(project, name)).toEqual([]);
    expect(await serviceRouter(project)).toBeNull();

    const beat = await api("POST", "/api/v1/agent/heartbeat", { version: "2.0.0", routers: [NOT_INSTALLED] }, token);
    expect(beat.status).toBe(204);
    expect(await gatewayRouters(project, name)).toEqual([NOT_INSTALLED]);
    expect(await serviceRouter(project)).toEqual({ mode: "built-in", reason: NOT_INSTALLED.reason });

    // An older agent: no `routers` at all. What was reported stands.
    expect((await api("POST", "/api/v1/agent/heartbeat", { version: "1.0.0" }, token)).status).toBe(204);
    expect(await gatewayRouters(project, name)).toEqual([NOT_INSTALLED]);
  });

  it("refuses a malformed report, naming the field, and changes nothing", async () => {
    const { project, name, token } = await setUp();
    const bad = await api(
      "POST",
      "/api/v1/agent/heartbeat",
      { routers: [{ service: "echo", mode: "sideways", reason: null }] },
      token,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({
      code: "invalid_field",
      field: "routers[0].mode",
      message: "routers[0].mode: expected one of external, built-in",
    });
    const [row] = await objectSql<{ routers: string | null }>(project, name, "SELECT routers FROM replicas");
    expect(row?.routers).toBeNull();
  });

  it("takes the report from the WebSocket's health messages", async () => {
    const { project, name, token } = await setUp();
    const res = await SELF.fetch("http://gateplane.test/api/v1/agent/connect", {
      headers: { upgrade: "websocket", authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    ws.send(
      JSON.stringify({ type: "health", status: "healthy", message: null, version: "2.0.0", routers: [EXTERNAL] }),
    );
    const g: Gateway = await waitFor("report", async () => {
      const got = (await getGateway(project, name)).body as Gateway;
      return got.replicas[0]?.routers?.length ? got : null;
    });
    expect(g.replicas[0]!.routers).toEqual([EXTERNAL]);
    expect(await serviceRouter(project)).toEqual({ mode: "external", reason: null });
    // A health message from an older agent (no routers) is still valid.
    ws.send(JSON.stringify({ type: "health", status: "healthy", message: null, version: "1.0.0" }));
    ws.send(JSON.stringify({ type: "ping" }));
    await new Promise<void>((resolve) => ws.addEventListener("message", () => resolve(), { once: true }));
    expect(await gatewayRouters(project, name)).toEqual([EXTERNAL]);
    ws.close(1000, "done");
  });
});
