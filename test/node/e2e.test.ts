/**
 * End to end on loopback: the `npm start` stack (wrangler dev with D1 and the GatewayObject, the
 * local host daemon, real agents) driven by the real `gateplane` bin.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../../local-host/stack.ts";
import type { Gateway } from "../../schema/api.ts";
import type { LocalInstance } from "../../schema/local-host.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = path.join(ROOT, "bin/gateplane.mjs");
const EXAMPLE = path.join(ROOT, "examples/local-gateway.dstack.yml");

let stack: Stack;
let dir: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address ? address.port : 0;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, GATEPLANE_CONFIG: path.join(dir, "config.json"), NO_COLOR: "1" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function hosts(): Promise<LocalInstance[]> {
  const secrets = JSON.parse(await readFile(path.join(dir, "secrets.json"), "utf8")) as Record<string, string>;
  const res = await fetch(`${stack.daemon.url}/v1/instances`, {
    headers: { authorization: `Bearer ${secrets.LOCAL_HOST_DAEMON_TOKEN}` },
  });
  return ((await res.json()) as { instances: LocalInstance[] }).instances;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-e2e-"));
  stack = await startStack({ dir, port: await freePort(), quiet: true });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
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
