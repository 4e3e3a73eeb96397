/**
 * The fake answers plan and apply as the Worker does (test/worker/gateways.test.ts and
 * services.test.ts assert the same statuses and words of the real one): both decide with
 * `schema/plan.ts`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STALE_PLAN } from "../../schema/plan.ts";
import { FakeControlPlane } from "../fakes/control-plane/api.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${fake.url}/api/v1/projects/main${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const EDGE = {
  type: "gateway",
  name: "edge",
  backend: "aws",
  region: "eu-west-1",
  domain: "example.com",
  certificate: null,
};

describe("the fake control plane answers as the Worker", () => {
  it("creates a gateway with 201, updates it with 200, and refuses a stale plan", async () => {
    const spec = { configuration: EDGE, configuration_path: null };
    const plan = await post("/gateways/plan", { spec });
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ action: "create", in_place: false, current_resource: null });
    const created = await post("/gateways/apply", { plan: { spec, current_resource: null } });
    expect(created.status).toBe(201);

    const next = { configuration: { ...EDGE, replicas: 2 }, configuration_path: "g.yml" };
    const update = await post("/gateways/plan", { spec: next });
    expect(update.body).toMatchObject({ action: "update", in_place: true, spec: next });
    const updated = await post("/gateways/apply", {
      plan: { spec: next, current_resource: update.body.current_resource },
    });
    expect(updated.status).toBe(200);

    const stale = await post("/gateways/apply", { plan: { spec, current_resource: update.body.current_resource } });
    expect(stale).toEqual({ status: 409, body: { error: { code: STALE_PLAN.code, message: STALE_PLAN.message } } });
  });

  it("creates a service with 201, re-applies it with 200, and refuses to move it", async () => {
    fake.seed({ name: "edge", domain: "example.com" }, { default: true });
    fake.seed({ name: "backup", domain: "backup.example.com" });
    const spec = { configuration: { type: "service", name: "echo" }, configuration_path: null };
    expect((await post("/services/apply", { plan: { spec, current_resource: null } })).status).toBe(201);
    const plan = await post("/services/plan", { spec });
    expect(plan.body).toMatchObject({ action: "update", in_place: true, changes: [] });
    const again = await post("/services/apply", { plan: { spec, current_resource: plan.body.current_resource } });
    expect(again.status).toBe(200);

    const moved = { ...spec, configuration: { ...spec.configuration, gateway: "backup" } };
    expect((await post("/services/plan", { spec: moved })).body).toMatchObject({ action: "create", in_place: false });
    expect(await post("/services/apply", { plan: { spec: moved, current_resource: null }, force: true })).toEqual({
      status: 409,
      body: {
        error: {
          code: "not_updatable",
          message: "Service echo is served by gateway edge; delete it and re-apply to move it to backup",
          field: "gateway",
        },
      },
    });
  });
});
