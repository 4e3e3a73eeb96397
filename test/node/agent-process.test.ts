import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type FakeControlPlane, startFakeControlPlane } from "../../agent/testing/fake-control-plane.ts";
import { allocatePorts } from "../../local-host/ports.ts";

const BIN = fileURLToPath(new URL("../../bin/gateplane-agent.mjs", import.meta.url));
const SECRET = "bootstrap-secret-0123456789abcdef0123456789";

let dir: string;
let cp: FakeControlPlane;
let child: ChildProcess | null = null;

function run(args: string[]): { child: ChildProcess; output: () => string } {
  let output = "";
  child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d: Buffer) => {
    output += d;
  });
  child.stderr!.on("data", (d: Buffer) => {
    output += d;
  });
  return { child, output: () => output };
}

async function exitOf(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null) return c.exitCode;
  const [code] = (await once(c, "exit")) as [number | null];
  return code;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-bin-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
});

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  child = null;
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

describe("gateplane-agent", () => {
  it("exits 2 naming the field when the user-data is invalid", async () => {
    const userData = path.join(dir, "user-data.json");
    await writeFile(userData, JSON.stringify({ control_plane_url: cp.url, replica_num: -1 }));
    const { child: c, output } = run(["--user-data", userData, "--state-dir", dir, "--http-port", "0"]);
    expect(await exitOf(c)).toBe(2);
    expect(output()).toContain("replica_num:");
    expect(output()).toContain("object_id:");
  });

  it("exits 2 on a bad command line", async () => {
    const { child: c, output } = run(["--state-dir", dir]);
    expect(await exitOf(c)).toBe(2);
    expect(output()).toContain("--user-data is required");
  });

  it("registers, heartbeats, serves /healthz, and exits 0 on SIGTERM", async () => {
    const userData = path.join(dir, "user-data.json");
    await writeFile(
      userData,
      JSON.stringify({
        control_plane_url: cp.url,
        object_id: "cd".repeat(32),
        gateway_id: "5f0c6a36-8d3e-4c4b-9b7a-2c1f1f6f9e11",
        gateway_name: "edge",
        project_name: "main",
        replica_num: 0,
        bootstrap_secret: SECRET,
      }),
    );
    const [httpPort, httpsPort] = await allocatePorts(2, new Set());
    const { child: c, output } = run([
      "--user-data",
      userData,
      "--state-dir",
      dir,
      "--http-port",
      String(httpPort),
      "--https-port",
      String(httpsPort),
      "--heartbeat-interval",
      "0.1",
    ]);
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
    expect(cp.routes("heartbeat")[0]!.authorization).toBe(`Bearer ${cp.issued[0]}`);
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(await health.text()).toBe("ok");

    c.kill("SIGTERM");
    expect(await exitOf(c)).toBe(0);
    const lines = output().trim().split("\n");
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z (info|warn|error) \S/);
    expect(lines.some((l) => l.includes("registered with"))).toBe(true);
    expect(lines.at(-1)).toMatch(/info agent stopped$/);
    // The one-time secret and the token never reach the log.
    expect(output()).not.toContain(SECRET);
    expect(output()).not.toContain(cp.issued[0]!);
  });
});
