/**
 * The CLI's list calls follow the API's paging (`schema/paging.ts`) against the fake control plane,
 * which pages as the Worker does: every item once, in the list's order, pages of the size asked.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PAGE_LIMIT_DEFAULT } from "../schema/paging.ts";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

const gets = (suffix: string) =>
  fake.requests.filter((r) => r.method === "GET" && r.path.endsWith(suffix)).map((r) => r.path);

describe("list paging", () => {
  it("gateway list and service list follow cursors to the end, pages of 100", async () => {
    fake.seed({ name: "edge", domain: "example.com" }, { default: true });
    for (let i = 0; i < 2 * PAGE_LIMIT_DEFAULT + 10; i++) fake.seed({ name: `gw-${String(i).padStart(3, "0")}` });
    for (let i = 0; i < PAGE_LIMIT_DEFAULT + 1; i++) fake.seedService({ name: `svc-${String(i).padStart(3, "0")}` });
    const gateways = await runCli(["gateway", "list", "--json"], testIo({ env: fake.env }));
    expect(gateways.code).toBe(0);
    const names = (JSON.parse(gateways.stdout) as { gateways: { name: string }[] }).gateways.map((g) => g.name);
    expect(names).toHaveLength(2 * PAGE_LIMIT_DEFAULT + 11);
    expect(new Set(names).size).toBe(names.length);
    expect(gets("/gateways")).toHaveLength(3);
    const services = await runCli(["service", "list", "--json"], testIo({ env: fake.env }));
    expect(services.code).toBe(0);
    const listed = (JSON.parse(services.stdout) as { services: { name: string }[] }).services.map((s) => s.name);
    expect(listed).toEqual(
      Array.from({ length: PAGE_LIMIT_DEFAULT + 1 }, (_, i) => `svc-${String(i).padStart(3, "0")}`),
    );
    expect(gets("/services")).toHaveLength(2);
  });

  it("events --limit N collects N over pages, oldest first; the default is one page of the newest 100", async () => {
    for (let id = 1; id <= 2500; id++) {
      fake.accounts.events.push({
        id,
        gateway_name: "edge",
        actor: "alice",
        message: `event ${id}`,
        type: null,
        data: null,
        sequence: null,
        created_at: "2026-01-01T00:00:00.000Z",
      });
    }
    const ids = async (args: string[]) => {
      const out = await runCli(["events", ...args, "--json"], testIo({ env: fake.env }));
      expect(out.code).toBe(0);
      return (JSON.parse(out.stdout) as { events: { id: number }[] }).events.map((e) => e.id);
    };
    expect(await ids([])).toEqual(Array.from({ length: 100 }, (_, i) => 2401 + i));
    const before = fake.requests.length;
    expect(await ids(["--limit", "1500"])).toEqual(Array.from({ length: 1500 }, (_, i) => 1001 + i));
    expect(fake.requests.length - before).toBe(2);
    expect(await ids(["--limit", "9999"])).toEqual(Array.from({ length: 2500 }, (_, i) => 1 + i));
    const bad = await runCli(["events", "--limit", "0"], testIo({ env: fake.env }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--limit: expected a positive integer");
  });

  it("webhook deliveries shows the newest 100, following pages until it has them", async () => {
    const hook = fake.webhooks.seed();
    for (let i = 0; i < 150; i++) fake.webhooks.seedDelivery(hook.id);
    const out = await runCli(["webhook", "deliveries", hook.id, "--json"], testIo({ env: fake.env }));
    expect(out.code).toBe(0);
    const ids = (JSON.parse(out.stdout) as { deliveries: { id: number }[] }).deliveries.map((d) => d.id);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => 150 - i));
  });
});
