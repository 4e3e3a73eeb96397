import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { backendTiming } from "../../durable-objects/backends/clouds/worker-settings.ts";
import { api, newProject, newUser, plan } from "./helpers.ts";

const AWS = { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const awsGateway = { type: "gateway", name: "gw-aws", backend: "aws", region: "eu-west-1", domain: "example.com" };

describe("backend credentials", () => {
  it("stores credentials encrypted, per project, and unlocks the backend for gateways", async () => {
    const project = await newProject();
    const before = await plan(project, awsGateway);
    expect(before.status).toBe(400);
    expect(before.body.error).toMatchObject({ field: "backend" });
    expect(before.body.error.message).toContain(`PUT /api/v1/projects/${project}/backends/aws`);

    const put = await api("PUT", `/api/v1/projects/${project}/backends/aws`, AWS);
    expect(put.status).toBe(200);
    const rows = await env.DB.prepare("SELECT * FROM backend_credentials").all();
    expect(JSON.stringify(rows.results)).not.toContain(AWS.secret_access_key);
    expect(JSON.stringify(rows.results)).not.toContain(AWS.access_key_id);

    const list = await api("GET", `/api/v1/projects/${project}/backends`);
    expect(list.body.backends.find((b: { type: string }) => b.type === "aws")).toMatchObject({ configured: true });
    expect((await plan(project, awsGateway)).body).toMatchObject({ action: "create" });

    const other = await newProject();
    expect((await plan(other, awsGateway)).status).toBe(400);

    expect((await api("DELETE", `/api/v1/projects/${project}/backends/aws`)).status).toBe(204);
    expect((await plan(project, awsGateway)).status).toBe(400);
  });

  it("validates credentials by backend and role", async () => {
    const project = await newProject();
    const bad = await api("PUT", `/api/v1/projects/${project}/backends/aws`, { ...AWS, access_key_id: "nope" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("access_key_id");
    const unknown = await api("PUT", `/api/v1/projects/${project}/backends/ovh`, AWS);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.field).toBe("type");
    const local = await api("PUT", `/api/v1/projects/${project}/backends/local`, {});
    expect(local.status).toBe(400);
    const member = await newUser(project, "member");
    expect((await api("PUT", `/api/v1/projects/${project}/backends/aws`, AWS, member)).status).toBe(403);
  });
});

describe("backend timing bindings", () => {
  it("keeps each backend's defaults when unset and refuses values that are not milliseconds", () => {
    expect(backendTiming({})).toEqual({ pollIntervalMs: undefined, retryDelayMs: undefined });
    expect(backendTiming({ CLOUD_POLL_INTERVAL_MS: "50", CLOUD_RETRY_DELAY_MS: "20" })).toEqual({
      pollIntervalMs: 50,
      retryDelayMs: 20,
    });
    expect(() => backendTiming({ CLOUD_POLL_INTERVAL_MS: "2s" })).toThrow(
      'CLOUD_POLL_INTERVAL_MS: expected milliseconds between 1 and 60000, got "2s"',
    );
    expect(() => backendTiming({ CLOUD_RETRY_DELAY_MS: "0" })).toThrow("CLOUD_RETRY_DELAY_MS");
  });
});
