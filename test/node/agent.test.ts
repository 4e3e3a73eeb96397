import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Agent, type AgentOptions, startAgent } from "../../agent/agent.ts";
import { parseAgentArgs, USAGE, UsageError } from "../../agent/args.ts";
import { BootstrapError, readBootstrap } from "../../agent/bootstrap.ts";
import { type ProxyOptions, startProxy } from "../../proxy/index.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { bootstrapFor, get, memoryLog, SECRET } from "../support/agent-fixtures.ts";

// Registration and tokens over the HTTP API; config sync is agent-sync.test.ts. The fake control
// plane has no WebSocket here, so the HTTP heartbeat (the fallback) is what shows the token in use.
let dir: string;
let cp: FakeControlPlane;
const agents: Agent[] = [];

async function start(overrides: Partial<AgentOptions> = {}): Promise<Agent> {
  const agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 0,
    heartbeatIntervalMs: 100,
    backoff: { initialMs: 20, maxMs: 100 },
    refusedRetryMs: 100,
    log: memoryLog(),
    version: "9.9.9-test",
    ...overrides,
  });
  agents.push(agent);
  return agent;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET, websocket: false });
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

describe("registration", () => {
  it("retries while the control plane answers 503, then heartbeats with the issued token", async () => {
    cp.failRegistrations(3, 503);
    const agent = await start();
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThanOrEqual(2), { timeout: 5_000 });

    const registers = cp.routes("register");
    expect(registers).toHaveLength(4);
    expect(registers[3]!.body).toEqual({
      object_id: "ab".repeat(32),
      gateway_id: "5f0c6a36-8d3e-4c4b-9b7a-2c1f1f6f9e11",
      replica_num: 1,
      bootstrap_secret: SECRET,
      version: "9.9.9-test",
    });
    const token = cp.issued[0]!;
    expect(agent.token).toBe(token);
    for (const heartbeat of cp.routes("heartbeat")) {
      expect(heartbeat.authorization).toBe(`Bearer ${token}`);
      expect(heartbeat.body).toEqual({ version: "9.9.9-test", status: "healthy", message: null, routers: [] });
    }
  });

  it("keeps retrying while the control plane is unreachable", async () => {
    const url = cp.url;
    await cp.close();
    const log = memoryLog();
    await start({ log, bootstrap: bootstrapFor(url) });
    // At least: retries come every 20–100 ms, faster than waitFor's polls, so an exact count is a race.
    await vi.waitFor(
      () => expect(log.lines.filter((l) => l.startsWith("warn registration failed")).length).toBeGreaterThanOrEqual(3),
      { timeout: 10_000 },
    );
    expect(log.lines.find((l) => l.includes("ECONNREFUSED"))).toBeDefined();
    cp = await startFakeControlPlane({ bootstrapSecret: SECRET, websocket: false });
  });

  it("persists the token (0600) and resumes with it after a restart, when the secret is spent", async () => {
    const first = await start();
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThan(0), { timeout: 10_000 });
    const token = cp.issued[0]!;
    const file = path.join(dir, "agent-token.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ token, gateway_id: bootstrapFor("").gateway_id });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await first.stop();

    const heartbeatsBefore = cp.routes("heartbeat").length;
    const log = memoryLog();
    const second = await start({ log });
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThan(heartbeatsBefore), {
      timeout: 10_000,
    });
    expect(cp.issued).toHaveLength(1);
    expect(second.token).toBe(token);
    expect(cp.routes("heartbeat").at(-1)!.authorization).toBe(`Bearer ${token}`);
    expect(log.lines.some((l) => l.includes("resuming with the persisted token"))).toBe(true);
  });

  it("does not resume with a persisted token of another gateway", async () => {
    const foreign = { token: "foreign", expires_at: Date.now() / 1000 + 600, obtained_at: Date.now() / 1000 };
    await writeFile(
      path.join(dir, "agent-token.json"),
      JSON.stringify({ ...foreign, gateway_id: "00000000-0000-0000-0000-000000000000", replica_num: 1 }),
    );
    // Another host spent the secret: registration is refused from the start.
    const { object_id, gateway_id, replica_num, bootstrap_secret } = bootstrapFor(cp.url);
    const spent = await fetch(`${cp.url}/api/v1/agent/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ object_id, gateway_id, replica_num, bootstrap_secret }),
    });
    expect(spent.status).toBe(200);
    const log = memoryLog();
    const agent = await start({ log });
    await vi.waitFor(() => expect(cp.routes("register").length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    expect(agent.token).toBeNull();
    expect(cp.routes("heartbeat")).toHaveLength(0);
    expect(
      log.lines.some((l) => l.startsWith("error registration refused") && l.includes("no usable persisted token")),
    ).toBe(true);
  });
});

describe("token lifecycle", () => {
  it("refreshes the token at half-life and heartbeats with the new one", async () => {
    await cp.close();
    cp = await startFakeControlPlane({ bootstrapSecret: SECRET, tokenTtlSeconds: 2, websocket: false });
    const agent = await start();
    await vi.waitFor(() => expect(cp.routes("token").length).toBeGreaterThanOrEqual(1), { timeout: 20_000 });
    const refresh = cp.routes("token")[0]!;
    expect(refresh.authorization).toBe(`Bearer ${cp.issued[0]}`);
    const registeredAt = cp.routes("register")[0]!.at;
    // Half of a 1–2 s lifetime (expires_at is whole seconds): never before 0.4 s, never after the expiry.
    expect(refresh.at - registeredAt).toBeGreaterThanOrEqual(400);
    // Before the expiry: the fake refuses an expired token, and answered this refresh with a new one
    // (its only other way to issue one, a second registration, did not happen).
    const refreshed = await vi.waitFor(
      () => {
        expect(cp.issued.length).toBeGreaterThanOrEqual(2);
        return cp.issued[1]!;
      },
      { timeout: 5_000 },
    );
    expect(cp.routes("register")).toHaveLength(1);
    await vi.waitFor(() => expect(cp.routes("heartbeat").at(-1)!.authorization).toBe(`Bearer ${refreshed}`), {
      timeout: 10_000,
    });
    expect(agent.token).toBe(cp.issued.at(-1));
    expect(JSON.parse(await readFile(path.join(dir, "agent-token.json"), "utf8")).token).toBe(cp.issued.at(-1));
  });

  it("registers again when its token is refused (401)", async () => {
    const log = memoryLog();
    await start({ log });
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThan(0), { timeout: 10_000 });
    const oldToken = cp.issued[0]!;
    cp.revokeTokens();
    cp.rearmSecret();
    await vi.waitFor(() => expect(cp.issued).toHaveLength(2), { timeout: 10_000 });
    const newToken = cp.issued[1]!;
    await vi.waitFor(() => expect(cp.routes("heartbeat").at(-1)!.authorization).toBe(`Bearer ${newToken}`), {
      timeout: 10_000,
    });
    expect(cp.routes("register")).toHaveLength(2);
    expect(newToken).not.toBe(oldToken);
    expect(log.lines.some((l) => l.startsWith("warn token refused on heartbeat"))).toBe(true);
  });
});

describe("ports", () => {
  it("starts the proxy as asked and answers the agent's /healthz on the admin port only", async () => {
    let proxyOptions: ProxyOptions | null = null;
    const agent = await start({
      host: "127.0.0.1",
      processes: 1,
      adminPort: 0,
      startProxy: (options) => {
        proxyOptions = options;
        return startProxy(options);
      },
    });
    expect(proxyOptions).toMatchObject({ host: "127.0.0.1", httpPort: 0, processes: 1, initialConfig: null });
    // The access log, when a document asks for a file, goes beside the agent's state.
    expect(proxyOptions!.stateDir).toBe(dir);
    expect(agent.adminPort).not.toBe(agent.httpPort);
    await vi.waitFor(() => expect(cp.routes("heartbeat").length).toBeGreaterThan(0), { timeout: 10_000 });
    const health = await fetch(`http://127.0.0.1:${agent.adminPort}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get("content-type")).toBe("application/json");
    expect(await health.json()).toEqual({
      registered: true,
      config_version: null,
      control_plane_connected: false,
      status: "healthy",
      message: null,
      agent_version: "9.9.9-test",
      routers: [],
      rejected_services: [],
    });
    // Beside it, the host's metrics (docs/metrics.md); anything else is 404.
    const metrics = await fetch(`http://127.0.0.1:${agent.adminPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await metrics.text()).toContain("gateplane_config_version 0\n");
    expect((await fetch(`http://127.0.0.1:${agent.adminPort}/other`)).status).toBe(404);
    // The proxy's port belongs to services: the agent answers nothing there itself.
    const onProxy = await get(agent.httpPort, "llama.localhost", "/healthz");
    expect(onProxy.status).toBe(404);
    expect(onProxy.body).not.toContain("config_version");
  });

  it("has no admin endpoint unless asked, and closes both ports when stopped", async () => {
    const plain = await start();
    expect(plain.adminPort).toBeNull();
    const agent = await start({ adminPort: 0 });
    await agent.stop();
    await expect(fetch(`http://127.0.0.1:${agent.adminPort}/healthz`)).rejects.toThrow();
    await expect(get(agent.httpPort, "llama.localhost")).rejects.toThrow();
    // Stopping twice is harmless (a signal handler and a supervisor may both do it).
    await agent.stop();
  });
});

describe("command line", () => {
  const base = ["--user-data", "/etc/gateplane/bootstrap.json", "--state-dir", "/var/lib/gateplane"];

  it("needs only what the local host daemon passes, with defaults for the rest", () => {
    expect(parseAgentArgs([...base, "--http-port", "8080", "--https-port", "8443"])).toEqual({
      userDataFile: "/etc/gateplane/bootstrap.json",
      stateDir: "/var/lib/gateplane",
      host: "127.0.0.1",
      httpPort: 8080,
      httpsPort: 8443,
      adminPort: null,
      processes: availableParallelism(),
      heartbeatIntervalMs: 10_000,
      sglangRouterCommand: null,
      sglangRouterPorts: { from: 20000, to: 24999 },
      // The proxy runs as its own process (docs/gateway-host.md) unless asked otherwise.
      inProcessProxy: false,
      // With one proxy process, the proxy serves in its own process unless a child is asked for.
      servingChild: false,
    });
    expect(parseAgentArgs([...base, "--http-port", "1", "--serving-child"]).servingChild).toBe(true);
    expect(parseAgentArgs([...base, "--http-port", "1", "--in-process-proxy"]).inProcessProxy).toBe(true);
    expect(parseAgentArgs([...base, "--http-port", "1", "--processes", "0"]).inProcessProxy).toBe(true);
  });

  it("takes the host, admin port and processes (here by --workers, their old name); an admin port of 0 means none", () => {
    const args = parseAgentArgs([
      ...base,
      "--http-port",
      "80",
      "--host",
      "0.0.0.0",
      "--admin-port",
      "9901",
      "--workers",
      "0",
    ]);
    expect(args).toMatchObject({ host: "0.0.0.0", httpPort: 80, adminPort: 9901, processes: 0 });
    expect(parseAgentArgs([...base, "--http-port", "80", "--admin-port", "0"]).adminPort).toBeNull();
  });

  it("takes --processes, and --workers as its old name, but not both", () => {
    expect(parseAgentArgs([...base, "--http-port", "80", "--processes", "3"]).processes).toBe(3);
    expect(parseAgentArgs([...base, "--http-port", "80", "--workers", "3"]).processes).toBe(3);
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--processes", "2", "--workers", "2"])).toThrow(
      /--processes and --workers \(its old name\) are the same setting: give one/,
    );
    // A refusal names the flag that was given.
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--processes", "many"])).toThrow(
      '--processes: expected a number of processes (0 serves from the agent), got "many"',
    );
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--workers", "many"])).toThrow(
      '--workers: expected a number of processes (0 serves from the agent), got "many"',
    );
    expect(USAGE).toContain("[--processes <n>]");
  });

  it("refuses bad values", () => {
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--host", "example.com"])).toThrow(UsageError);
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--admin-port", "99999"])).toThrow(/--admin-port/);
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--workers", "-1"])).toThrow(/--workers/);
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--processes", "-1"])).toThrow(/--processes/);
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--sglang-router-ports", "9-8"])).toThrow(
      /--sglang-router-ports/,
    );
    expect(() => parseAgentArgs([...base, "--http-port", "80", "--sglang-router-command", " "])).toThrow(
      /--sglang-router-command/,
    );
  });

  it("takes the sglang router's launch command and port range", () => {
    const args = parseAgentArgs([
      ...base,
      "--http-port",
      "80",
      "--sglang-router-command",
      "/opt/smg/bin/smg  launch",
      "--sglang-router-ports",
      "31000-31099",
    ]);
    expect(args).toMatchObject({
      sglangRouterCommand: ["/opt/smg/bin/smg", "launch"],
      sglangRouterPorts: { from: 31000, to: 31099 },
    });
  });
});

describe("bootstrap", () => {
  it("names the offending field of an invalid user-data document", async () => {
    const file = path.join(dir, "user-data.json");
    await writeFile(file, JSON.stringify({ ...bootstrapFor("http://127.0.0.1:1"), object_id: "nope" }));
    const error = await readBootstrap(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BootstrapError);
    expect((error as Error).message).toContain("object_id: expected 64 hex characters");
  });

  it("reads a valid document", async () => {
    const file = path.join(dir, "user-data.json");
    await writeFile(file, JSON.stringify(bootstrapFor("http://127.0.0.1:1")));
    expect(await readBootstrap(file)).toEqual(bootstrapFor("http://127.0.0.1:1"));
  });
});
