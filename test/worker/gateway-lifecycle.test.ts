/**
 * A gateway's whole life under one name: delete then apply again, server-side re-create, and a
 * deletion that would take services with it. The object is never evicted between the steps: the
 * same Durable Object (`idFromName(project/name)`) hosts the old gateway and the new one.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import {
  api,
  applyConfig,
  applyService,
  faults,
  gatewayStub,
  getGateway,
  localConfig,
  newProject,
  objectSql,
  plan,
  registerAgent,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const gw = (project: string) => `/api/v1/projects/${project}/gateways`;

/** Registers the agent of every replica that waits for one, until the gateway (not `notId`) runs. */
async function untilRunning(project: string, name: string, notId?: string): Promise<Gateway> {
  return waitFor(
    `${name} running`,
    async () => {
      const g = (await getGateway(project, name)).body;
      if (g.id === notId) return null;
      if (g.status === "running") return g;
      for (const r of g.replicas) {
        if (r.status === "provisioning" && r.instance_id && !r.agent) await registerAgent(project, name, r.replica_num);
      }
      return null;
    },
    20_000,
  );
}

async function runningGateway(project: string, name: string, extra: Record<string, unknown> = {}) {
  expect((await applyConfig(project, localConfig(name, extra))).status).toBe(201);
  return untilRunning(project, name);
}

async function deleted(project: string, name: string) {
  await waitFor(`${name} deleted`, async () => (await getGateway(project, name)).status === 404, 20_000);
}

describe("a gateway name used again", () => {
  it("delete, then apply of the same name runs again", async () => {
    const project = await newProject();
    const first = await runningGateway(project, "gw-again");
    expect((await api("DELETE", `${gw(project)}/gw-again`)).status).toBe(202);
    await deleted(project, "gw-again");

    const again = await applyConfig(project, localConfig("gw-again"));
    expect(again.status).toBe(201);
    const second = await untilRunning(project, "gw-again");
    expect(second.id).not.toBe(first.id);
    expect(second.replicas.map((r) => r.status)).toEqual(["running"]);
    const list = (await api<{ gateways: Gateway[] }>("GET", gw(project))).body.gateways;
    expect(list.map((g) => [g.name, g.status])).toEqual([["gw-again", "running"]]);
  });
});

/** Plans `configuration`, then applies that plan as a re-create. */
async function recreate(project: string, configuration: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const p = await plan(project, configuration);
  expect(p.status).toBe(200);
  return api<Gateway>("POST", `${gw(project)}/apply`, {
    plan: { spec: { configuration }, current_resource: p.body.current_resource },
    recreate: true,
    ...extra,
  });
}

describe("re-create on the server", () => {
  it("re-creates a running 2-replica gateway with a router: it ends running with the new configuration", async () => {
    const project = await newProject();
    const old = await runningGateway(project, "gw-rc", { replicas: 2 });
    const withRouter = localConfig("gw-rc", { replicas: 2, router: { type: "sglang" } });
    // Without recreate the change is refused, as before.
    const refused = await applyConfig(project, withRouter);
    expect(refused.status).toBe(409);
    expect((refused.body as any).error.code).toBe("not_updatable");

    const accepted = await recreate(project, withRouter);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ id: old.id, to_be_deleted: true });
    const fresh = await untilRunning(project, "gw-rc", old.id);
    expect(fresh.configuration.router).toMatchObject({ type: "sglang" });
    expect(fresh.replicas.map((r) => r.status)).toEqual(["running", "running"]);
    expect(fresh.default).toBe(true);
    const messages = (await api("GET", `/api/v1/projects/${project}/events?gateway=gw-rc`)).body.events.map(
      (e: { message: string }) => e.message,
    );
    expect(messages).toEqual(
      expect.arrayContaining(["Gateway marked for re-creation. Changed fields: router", "Gateway deleted"]),
    );
  });

  it("a re-create the create would refuse changes nothing", async () => {
    const project = await newProject();
    const old = await runningGateway(project, "gw-rc-bad");
    // The aws backend is not configured in this project: a create is refused, so is the re-create.
    const moved = { type: "gateway", name: "gw-rc-bad", backend: "aws", region: "eu-west-1", domain: "localhost" };
    const refused = await api("POST", `${gw(project)}/apply`, {
      plan: { spec: { configuration: moved }, current_resource: old },
      recreate: true,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.field).toBe("backend");
    const invalid = await api("POST", `${gw(project)}/apply`, {
      plan: { spec: { configuration: localConfig("gw-rc-bad", { replicas: 0 }) }, current_resource: old },
      recreate: true,
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.field).toBe("replicas");
    // A stale plan is refused too.
    const stale = await api("POST", `${gw(project)}/apply`, {
      plan: {
        spec: { configuration: localConfig("gw-rc-bad", { router: { type: "sglang" } }) },
        current_resource: { ...old, id: "00000000-0000-0000-0000-000000000000" },
      },
      recreate: true,
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("conflict");
    const after = (await getGateway(project, "gw-rc-bad")).body;
    expect(after).toMatchObject({ id: old.id, status: "running", to_be_deleted: false });
    expect(after.replicas.map((r) => [r.replica_num, r.status])).toEqual([[0, "running"]]);
  });
});

describe("re-create, then delete", () => {
  it("a delete while the old gateway is being torn down cancels the re-create", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-rc-del");
    // Terminating the host fails for now, so the re-create waits in its deletion phase.
    await faults({ fail_deletes: 100 });
    try {
      expect((await recreate(project, localConfig("gw-rc-del", { router: { type: "sglang" } }))).status).toBe(200);
      expect((await api("DELETE", `${gw(project)}/gw-rc-del`)).status).toBe(202);
    } finally {
      await faults({ fail_deletes: 0 });
    }
    // The termination's next attempt, now rather than after its back-off.
    await objectSql(project, "gw-rc-del", "UPDATE replicas SET next_attempt_at = 0");
    await runDurableObjectAlarm(await gatewayStub(project, "gw-rc-del"));
    // Gone, and not created again: the create would have run in the alarm that finished the deletion.
    await deleted(project, "gw-rc-del");
    const messages = (await api("GET", `/api/v1/projects/${project}/events?gateway=gw-rc-del`)).body.events.map(
      (e: { message: string }) => e.message,
    );
    expect(messages).toContain("Gateway re-creation cancelled: the gateway is deleted");
    expect(messages.filter((m: string) => m === "Gateway created. Status: SUBMITTED")).toHaveLength(1);
  });
});

describe("a gateway with services", () => {
  const echo = (name: string, gateway: string) => ({ type: "service", name, gateway, https: false });

  it("is not deleted (or re-created) without cascade; with it, its services go too", async () => {
    const project = await newProject();
    const old = await runningGateway(project, "gw-svc");
    expect((await applyService(project, echo("echo", "gw-svc"))).status).toBe(201);
    expect((await applyService(project, echo("chat", "gw-svc"))).status).toBe(201);
    expect((await api("PUT", `${servicesPath(project)}/echo/replicas/r1`, { url: "http://127.0.0.1:9" })).status).toBe(
      201,
    );

    const message =
      "Gateway gw-svc has 2 services (chat, echo): to delete it deletes them and their replica registrations. " +
      "Delete the services first, or ask for it with cascade: true.";
    for (const res of [
      await api("DELETE", `${gw(project)}/gw-svc`),
      await api("DELETE", `${gw(project)}/gw-svc?cascade=false`),
      await api("POST", `${gw(project)}/delete`, { names: ["gw-svc"] }),
    ]) {
      expect(res.status).toBe(409);
      expect(res.body.error).toEqual({ code: "has_services", field: "cascade", message });
    }
    const bogus = await api("DELETE", `${gw(project)}/gw-svc?cascade=yes`);
    expect(bogus.status).toBe(400);
    expect(bogus.body.error.field).toBe("cascade");
    const rc = await recreate(project, localConfig("gw-svc", { router: { type: "sglang" } }));
    expect(rc.status).toBe(409);
    expect((rc.body as any).error).toMatchObject({ code: "has_services", field: "cascade" });
    expect((rc.body as any).error.message).toContain("to re-create it deletes them");
    expect((await getGateway(project, "gw-svc")).body).toMatchObject({ id: old.id, to_be_deleted: false });
    expect((await api("GET", servicesPath(project))).body.services).toHaveLength(2);

    const gone = await api("DELETE", `${gw(project)}/gw-svc?cascade=true`);
    expect(gone.status).toBe(202);
    await deleted(project, "gw-svc");
    expect((await api("GET", servicesPath(project))).body.services).toEqual([]);
    const messages = (await api("GET", `/api/v1/projects/${project}/events?gateway=gw-svc`)).body.events.map(
      (e: { message: string }) => e.message,
    );
    expect(messages).toContain("Gateway marked for deletion with its services: chat, echo");
  });

  it("deletes a gateway without services as before, and several at once with cascade in the body", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-s1");
    await runningGateway(project, "gw-s2");
    expect((await applyService(project, echo("echo", "gw-s2"))).status).toBe(201);
    const refused = await api("POST", `${gw(project)}/delete`, { names: ["gw-s1", "gw-s2"] });
    expect(refused.status).toBe(409);
    // All or nothing: gw-s1 was not marked either.
    expect((await getGateway(project, "gw-s1")).body.to_be_deleted).toBe(false);
    const both = await api("POST", `${gw(project)}/delete`, { names: ["gw-s1", "gw-s2"], cascade: true });
    expect(both.status).toBe(202);
    await deleted(project, "gw-s1");
    await deleted(project, "gw-s2");
  });
});
