/**
 * A gateway's whole life under one name: delete then apply again, server-side re-create, and a
 * deletion that would take services with it. The object is never evicted between the steps: the
 * same Durable Object (`idFromName(project/name)`) hosts the old gateway and the new one.
 */
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import {
  api,
  applyConfig,
  applyService,
  getGateway,
  localConfig,
  newProject,
  plan,
  registerAgent,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const gw = (project: string) => `/api/v1/projects/${project}/gateways`;

/** Registers the agent of every replica that waits for one, until the gateway runs. */
async function untilRunning(project: string, name: string): Promise<Gateway> {
  return waitFor(
    `${name} running`,
    async () => {
      const g = (await getGateway(project, name)).body;
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
