/**
 * Issue 11 items 2 and 15 on the control plane: values the agent would refuse are refused by the
 * API with the field named; an agent's per-service rejection (in its ACK) is recorded per gateway
 * replica and shown in the gateway and service views; a one-replica gateway's hostname is its address.
 */
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import {
  api,
  applyConfig,
  applyService,
  connectAgent,
  getGateway,
  localConfig,
  newProject,
  registerAgent,
  servicesPath,
  waitFor,
} from "./helpers.ts";

async function runningGateway(project: string, name: string): Promise<string> {
  expect((await applyConfig(project, localConfig(name))).status).toBe(201);
  await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  const { res } = await registerAgent(project, name);
  expect(res.status).toBe(200);
  await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
  return res.body.token as string;
}

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "service",
  name,
  https: false,
  ...extra,
});

describe("values the agent would refuse", () => {
  it.each([
    ["client_max_body_size", { client_max_body_size: 1e20 }],
    ["client_max_body_size", { client_max_body_size: "10000000000GB" }],
    ["client_max_body_size", { client_max_body_size: "9".repeat(400) }],
    ["rate_limits[0].burst", { rate_limits: [{ rps: 1, burst: 1e16 }] }],
  ])("are refused by the API naming %s, and nothing is created", async (field, extra) => {
    const project = await newProject();
    await runningGateway(project, "gw-b");
    const res = await applyService(project, service("echo", extra));
    expect(res.status).toBe(400);
    expect((res.body as { error: { field: string } }).error.field).toBe(field);
    expect((await api("GET", `${servicesPath(project)}/echo`)).status).toBe(404);
  });
});

describe("a service an agent rejects", () => {
  it("is recorded per gateway replica and shown in the gateway and service views", async () => {
    const project = await newProject();
    const token = await runningGateway(project, "gw-r");
    const agent = await connectAgent(token);
    await applyService(project, service("echo"));
    await applyService(project, service("chat"));
    const doc = await waitFor("document with both", async () => agent.configs.find((d) => d.services.length === 2));
    agent.send({
      type: "ack",
      version: doc.version,
      rejected: [{ service: "echo", error: "services[0].client_max_body_size: too large", kept: false }],
    });

    const gateway = await waitFor("recorded", async () => {
      const g = (await getGateway(project, "gw-r")).body as Gateway;
      return g.replicas[0]?.config.applied_version === doc.version ? g : null;
    });
    expect(gateway.replicas[0]!.config).toEqual({
      desired_version: doc.version,
      applied_version: doc.version,
      error: null,
      rejected_services: [{ service: "echo", error: "services[0].client_max_body_size: too large", kept: false }],
    });
    const echo = (await api<Service>("GET", `${servicesPath(project)}/echo`)).body;
    expect(echo.gateway_replicas[0]).toMatchObject({
      state: "rejected",
      error: "services[0].client_max_body_size: too large",
    });
    const chat = (await api<Service>("GET", `${servicesPath(project)}/chat`)).body;
    expect(chat.gateway_replicas[0]).toMatchObject({ state: "in_sync", error: null });
    // A later version the agent applies whole clears it.
    await applyService(project, service("echo", { auth: false }));
    const next = await waitFor("next document", async () => agent.configs.find((d) => d.version > doc.version));
    const ack = await api("POST", "/api/v1/agent/ack", { version: next.version, error: null, rejected: [] }, token);
    expect(ack.status).toBe(204);
    const cleared = await waitFor("cleared", async () => {
      const s = (await api<Service>("GET", `${servicesPath(project)}/echo`)).body;
      return s.gateway_replicas[0]?.state === "in_sync" ? s : null;
    });
    expect(cleared.gateway_replicas[0]!.error).toBeNull();
    expect((await getGateway(project, "gw-r")).body.replicas[0]!.config.rejected_services).toEqual([]);
    agent.ws.close();
  });
});

describe("gateway view", () => {
  it("gives a one-replica gateway the replica's address as its hostname (issue 11 item 15)", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-h");
    const g = (await getGateway(project, "gw-h")).body as Gateway;
    expect(g.replicas).toHaveLength(1);
    expect(g.replicas[0]!.hostname).toBeTruthy();
    expect(g.hostname).toBe(g.replicas[0]!.hostname);
  });
});
