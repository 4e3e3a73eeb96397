/**
 * End to end on loopback: the `npm start` stack (wrangler dev with D1 and the GatewayObject, the
 * local host daemon, real agents) driven by the real `gateplane` bin. The run's shared stack, in a
 * project of this file's own (test/support/shared-stack.ts).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { alive, cliProcess, hosts as daemonHosts, ROOT, until } from "../support/stack.ts";

const EXAMPLE = path.join(ROOT, "examples/local-gateway.dstack.yml");

let stack: SharedStack;
let dir: string;
// The real bin, as a user runs it: the other end-to-end files run the CLI in-process (`cli`).
const cli = (...args: string[]) => cliProcess(stack, ...args);
const hosts = () => daemonHosts(stack);

beforeAll(async () => {
  stack = await sharedStack("e2e");
  dir = stack.dir;
}, 120_000);

afterAll(async () => {
  await stack?.release();
}, 60_000);

describe("local gateway, end to end", () => {
  it("applies, lists, and deletes a local gateway with the CLI; its agent process stops", async () => {
    const applied = await cli("apply", "-f", EXAMPLE, "-y");
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain("Gateway local-gateway does not exist yet.");
    expect(applied.stdout).toMatch(/local\s+local\s+local-gateway\s+127\.0\.0\.1:\d+\s+localhost\s+✓\s+running/);

    const listed = await cli("gateway", "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/BACKEND\s+REGION\s+NAME\s+HOSTNAME\s+DOMAIN\s+DEFAULT\s+STATUS/);
    expect(listed.stdout).toMatch(/local-gateway.*running/);

    const json = JSON.parse((await cli("gateway", "list", "--json")).stdout) as { gateways: Gateway[] };
    const gateway = json.gateways.find((g) => g.name === "local-gateway");
    expect(gateway?.replicas[0]?.agent?.registered_at).toBeTruthy();
    const host = (await hosts()).find((h) => h.instance_id === gateway?.replicas[0]?.instance_id);
    expect(host?.pid).toBeGreaterThan(0);
    expect(alive(host!.pid!)).toBe(true);
    // The agent's proxy serves the host's port: no service claims this host yet.
    expect((await fetch(`http://${host!.hostname}/`)).status).toBe(404);

    const again = await cli("apply", "-f", EXAMPLE, "-y");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("No configuration changes detected");

    const deleted = await cli("delete", "-f", EXAMPLE, "-y");
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain("Gateway local-gateway deleted");
    await until("gateway gone", async () => {
      const list = JSON.parse((await cli("gateway", "list", "--json")).stdout) as { gateways: Gateway[] };
      return list.gateways.length === 0;
    });
    expect((await hosts()).find((h) => h.instance_id === host!.instance_id)?.state).toBe("terminated");
    await until("agent process gone", async () => !alive(host!.pid!), 10_000);
    const missing = await cli("gateway", "get", "local-gateway", "--json");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("does not exist");
  }, 120_000);

  it("uses a name again after delete, and re-creates a running 2-replica gateway", async () => {
    const file = path.join(dir, "again.dstack.yml");
    const config = "type: gateway\nname: again\nbackend: local\ndomain: again.localhost\nreplicas: 2\n";
    const gateway = async () => JSON.parse((await cli("gateway", "get", "again", "--json")).stdout) as Gateway;
    await writeFile(file, config);
    expect((await cli("apply", "-f", file, "-y")).code).toBe(0);
    expect((await cli("delete", "-f", file, "-y")).code).toBe(0);
    await until("deleted", async () => (await cli("gateway", "get", "again", "--json")).code !== 0);

    // The same name at once (the object was not evicted in between): it runs again.
    const again = await cli("apply", "-f", file, "-y");
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    const second = await gateway();
    expect(second.status).toBe("running");

    // A change that cannot be made in place: one request re-creates it on the server.
    await writeFile(file, `${config}tags:\n  team: e2e\n`);
    const recreated = await cli("apply", "-f", file, "-y");
    expect(recreated.stderr).toBe("");
    expect(recreated.code).toBe(0);
    expect(recreated.stdout).toContain("Detected changes that cannot be updated in-place:\n- tags\n");
    const third = await gateway();
    expect(third.id).not.toBe(second.id);
    expect(third).toMatchObject({ status: "running", to_be_deleted: false, configuration: { tags: { team: "e2e" } } });
    expect(third.replicas.map((r) => r.status)).toEqual(["running", "running"]);

    expect((await cli("delete", "-f", file, "-y")).code).toBe(0);
    await until("deleted again", async () => (await cli("gateway", "get", "again", "--json")).code !== 0);
  }, 180_000);

  it("shows one clear line for errors: bad file names, bad fields with their position", async () => {
    const badName = await cli("apply", "-f", path.join(ROOT, "package.json"), "-y");
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toContain("*.dstack.yml");
    const wrong = await cli("apply", "-f", path.join(ROOT, "test/node/fixtures/bad-policy.dstack.yml"), "-y");
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(
      /bad-policy\.dstack\.yml:\d+:\d+: router\.policy: expected one of cache_aware, power_of_two, random, round_robin/,
    );
  }, 60_000);
});
