/**
 * Service tokens (issue 11, item 4): a project's `gps_…` tokens open its services on its gateways
 * and nothing else; API tokens (`gpt_…`) no longer reach gateways, so a replica is never handed a
 * credential that works on the API.
 */
import { describe, expect, it } from "vitest";
import type { ServiceToken, ServiceTokenCreated } from "../../schema/api.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { api, applyConfig, getGateway, localConfig, newProject, newUser, registerAgent, waitFor } from "./helpers.ts";

async function runningGateway(project: string, name: string): Promise<string> {
  expect((await applyConfig(project, localConfig(name))).status).toBe(201);
  await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  const { res } = await registerAgent(project, name);
  expect(res.status).toBe(200);
  await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
  return res.body.token as string;
}

const path = (project: string) => `/api/v1/projects/${project}/service-tokens`;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("service tokens", () => {
  it("any member creates, lists and revokes them; the secret is shown once", async () => {
    const project = await newProject();
    const member = await newUser(project, "member");
    const created = await api<ServiceTokenCreated>("POST", path(project), { description: "ci" }, member);
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^gps_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}$/);
    expect(created.body.token.split("_")[1]).toBe(created.body.id);
    expect(created.body.description).toBe("ci");

    const listed = await api<{ service_tokens: ServiceToken[] }>("GET", path(project), undefined, member);
    expect(listed.status).toBe(200);
    expect(listed.body.service_tokens).toEqual([
      { id: created.body.id, description: "ci", created_by: expect.any(String), created_at: created.body.created_at },
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token.split("_")[2]);

    const outsider = await newUser(null, null);
    expect((await api("POST", path(project), {}, outsider)).status).toBe(403);
    expect((await api("DELETE", `${path(project)}/${created.body.id}`, undefined, outsider)).status).toBe(403);

    expect((await api("DELETE", `${path(project)}/${created.body.id}`, undefined, member)).status).toBe(204);
    expect((await api("GET", path(project), undefined, member)).body.service_tokens).toEqual([]);
    const again = await api("DELETE", `${path(project)}/${created.body.id}`, undefined, member);
    expect(again.status).toBe(404);
  });

  it("are refused by the API, saying they only open services", async () => {
    const project = await newProject();
    const { body } = await api<ServiceTokenCreated>("POST", path(project), {});
    for (const route of ["/api/v1/me", `/api/v1/projects/${project}`, path(project)]) {
      const res = await api("GET", route, undefined, body.token);
      expect(res.status).toBe(401);
      expect(res.body.error.message).toMatch(/service token .*opens a project's services .*not the API/);
    }
  });
});

describe("tokens in the configuration document", () => {
  it("are the project's service tokens only: never API tokens; revocation is a new version", async () => {
    const project = await newProject();
    const agentToken = await runningGateway(project, "gw-st");
    const admin = await newUser(project, "admin");
    const [, apiId, apiSecret] = admin.split("_") as [string, string, string];

    const created = (await api<ServiceTokenCreated>("POST", path(project), {}, admin)).body;
    const [, id, secret] = created.token.split("_") as [string, string, string];
    const doc = (await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, agentToken)).body;
    expect(doc.service_tokens).toEqual([{ id, secret_sha256: await sha256Hex(secret) }]);
    // Nothing that works on the API travels to a gateway (whose replicas could otherwise be handed it).
    const text = JSON.stringify(doc);
    expect(text).not.toContain(apiId);
    expect(text).not.toContain(await sha256Hex(apiSecret));
    expect(text).not.toContain(secret);
    expect(text).not.toContain("auth_tokens");

    // Another project's service token is not in this gateway's document.
    const other = await newProject();
    const foreign = (await api<ServiceTokenCreated>("POST", path(other), {})).body;
    const same = (await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, agentToken)).body;
    expect(same.service_tokens.map((t) => t.id)).not.toContain(foreign.id);

    expect((await api("DELETE", `${path(project)}/${id}`, undefined, admin)).status).toBe(204);
    const after = (await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, agentToken)).body;
    expect(after.version).toBeGreaterThan(doc.version);
    expect(after.service_tokens).toEqual([]);
  });
});
