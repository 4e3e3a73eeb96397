import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { stopStandaloneProxy } from "../../agent/proxy-link.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { configDocument, get, type Replica, startReplica } from "../support/agent-fixtures.ts";
import { freePorts } from "../support/ports.ts";

const BIN = fileURLToPath(new URL("../../bin/gateplane-agent.mjs", import.meta.url));
const SECRET = "bootstrap-secret-0123456789abcdef0123456789";

let dir: string;
let cp: FakeControlPlane;
let child: ChildProcess | null = null;
let replica: Replica;

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
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET, deltas: true });
  replica = await startReplica("one");
});

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  child = null;
  // The standalone proxy outlives its agent (docs/gateway-host.md).
  await stopStandaloneProxy(dir);
  await cp.close();
  await replica.close();
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
    const { child: d, output: dOutput } = run([
      "--user-data",
      "x",
      "--state-dir",
      dir,
      "--http-port",
      "0",
      "--workers",
      "many",
    ]);
    expect(await exitOf(d)).toBe(2);
    expect(dOutput()).toContain('--workers: expected a number of processes (0 serves from the agent), got "many"');
  });

  it("registers, applies the pushed config to its proxy processes, serves traffic and /healthz, and exits 0 on SIGTERM leaving the proxy serving", async () => {
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
    cp.setConfig(configDocument(1, replica.url));
    const [httpPort, httpsPort, adminPort] = await freePorts(3);
    const { child: c, output } = run([
      "--user-data",
      userData,
      "--state-dir",
      dir,
      "--http-port",
      String(httpPort),
      "--https-port",
      String(httpsPort),
      "--admin-port",
      String(adminPort),
      "--workers",
      "1",
    ]);
    await vi.waitFor(() => expect(cp.received("ack").map((a) => a.version)).toEqual([1]), { timeout: 30_000 });
    expect(cp.sockets[0]!.authorization).toBe(`Bearer ${cp.issued[0]}`);
    expect(await get(httpPort!, "llama.localhost", "/v1/models")).toEqual({ status: 200, body: "one GET /v1/models" });
    const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    expect(await health.json()).toMatchObject({ registered: true, config_version: 1, control_plane_connected: true });
    // The next version comes as a delta, carried over the standalone proxy's control socket.
    cp.setConfig(configDocument(2, replica.url));
    await vi.waitFor(() => expect(cp.received("ack").map((a) => a.version)).toEqual([1, 2]), { timeout: 30_000 });
    expect(output()).toContain("applied config delta 1 → 2 from the WebSocket");
    expect(await get(httpPort!, "llama.localhost", "/v1/models")).toEqual({ status: 200, body: "one GET /v1/models" });

    c.kill("SIGTERM");
    expect(await exitOf(c)).toBe(0);
    // The host survives its agent: the standalone proxy serves on; stopping it frees the port.
    expect(await get(httpPort!, "llama.localhost", "/v1/models")).toEqual({ status: 200, body: "one GET /v1/models" });
    expect(await stopStandaloneProxy(dir)).toBe(true);
    await expect(get(httpPort!, "llama.localhost")).rejects.toThrow();
    // It said goodbye on the WebSocket rather than vanishing.
    await vi.waitFor(() => expect(cp.sockets[0]!.closeCode).toBe(1000), { timeout: 10_000 });
    const lines = output().trim().split("\n");
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z (info|warn|error) \S/);
    expect(lines.some((l) => l.includes("registered with"))).toBe(true);
    expect(lines.at(-1)).toMatch(/info agent stopped$/);
    // The one-time secret and the token never reach the log.
    expect(output()).not.toContain(SECRET);
    expect(output()).not.toContain(cp.issued[0]!);
  });
});
