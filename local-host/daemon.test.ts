import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LocalInstance } from "../schema/local-host.ts";
import { alive } from "../test/support/stack.ts";
import { type HostDaemon, type HostDaemonOptions, startHostDaemon } from "./daemon.ts";
import { StateFileError } from "./errors.ts";
import { allocatePorts } from "./ports.ts";

const TOKEN = "daemon-token-0123456789abcdef0123456789";

/** Plays an agent: serves its HTTP port, echoes its user-data, exits 3 on /crash, optionally ignores SIGTERM. */
const FAKE_AGENT = `
const http = require("node:http");
const fs = require("node:fs");
if (process.env.FAKE_IGNORE_TERM) process.on("SIGTERM", () => {});
console.log("fake agent", process.pid, "started");
http.createServer((req, res) => {
  if (req.url === "/crash") { res.end("bye"); setTimeout(() => process.exit(3), 5); return; }
  if (req.url === "/user-data") { res.end(fs.readFileSync(process.env.FAKE_USER_DATA)); return; }
  res.end(String(process.pid));
}).listen(Number(process.env.FAKE_PORT), "127.0.0.1");
`;

let stateDir: string;
const daemons: HostDaemon[] = [];
const pids = new Set<number>();

const agentCommand: HostDaemonOptions["agentCommand"] = (instance, paths) => ({
  command: process.execPath,
  args: ["-e", FAKE_AGENT],
  env: {
    PATH: process.env.PATH,
    FAKE_PORT: String(instance.http_port),
    FAKE_USER_DATA: paths.userDataFile,
    ...(instance.tags.ignore_term ? { FAKE_IGNORE_TERM: "1" } : {}),
  },
});

async function startDaemon(overrides: Partial<HostDaemonOptions> = {}): Promise<HostDaemon> {
  const daemon = await startHostDaemon({
    stateDir,
    token: TOKEN,
    agentCommand,
    restartBackoff: { initialMs: 50, maxMs: 200, resetAfterMs: 10_000 },
    stopGraceMs: 2_000,
    ...overrides,
  });
  daemons.push(daemon);
  return daemon;
}

interface Answer {
  status: number;
  body: any;
}

async function api(daemon: HostDaemon, method: string, route: string, body?: unknown, token = TOKEN): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(daemon.url + route, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const answer: Answer = { status: response.status, body: await response.json() };
  if (typeof answer.body?.pid === "number") pids.add(answer.body.pid);
  return answer;
}

const createBody = (clientToken: string, extra: Record<string, unknown> = {}) => ({
  client_token: clientToken,
  name: "gw-edge-0",
  user_data: JSON.stringify({ hello: clientToken }),
  ...extra,
});

async function hostAnswer(instance: LocalInstance, route = "/"): Promise<string> {
  const response = await fetch(`http://${instance.hostname}${route}`);
  return response.text();
}

beforeEach(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "gp-daemon-"));
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  // Belt and braces: a failed assertion must not leave fake agents behind.
  for (const pid of pids) if (alive(pid)) process.kill(-pid, "SIGKILL");
  pids.clear();
  await rm(stateDir, { recursive: true, force: true });
});

describe("auth and validation", () => {
  it("serves /v1/health without a token and refuses the API without the right one", async () => {
    const daemon = await startDaemon();
    const health = await fetch(`${daemon.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });

    const none = await fetch(`${daemon.url}/v1/instances`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(await none.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    const wrong = await api(daemon, "GET", "/v1/instances", undefined, `${TOKEN}x`);
    expect(wrong.status).toBe(401);
    const creating = await api(daemon, "POST", "/v1/instances", createBody("t1"), "short");
    expect(creating.status).toBe(401);
    expect((await api(daemon, "GET", "/v1/instances")).body.instances).toEqual([]);
  });

  it.each([
    [{ ...createBody("t1"), name: "Not A Host" }, "name: expected a lowercase host name"],
    [{ ...createBody("t1"), client_token: "has space" }, "client_token: expected 1–64"],
    [{ ...createBody("t1"), user_data: "x".repeat(16385) }, "user_data: user-data is limited to 16 KiB"],
    [{ ...createBody("t1"), extra: 1 }, "extra:"],
    [{ ...createBody("t1"), tags: { team: 1 } }, "tags.team:"],
  ])("answers 400 naming the field for %#", async (body, message) => {
    const daemon = await startDaemon();
    const answer = await api(daemon, "POST", "/v1/instances", body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe("invalid_request");
    expect(answer.body.error.message).toContain(message);
  });

  it("answers 400 to a body that is not JSON and 404 to unknown routes and ids", async () => {
    const daemon = await startDaemon();
    const answer = await api(daemon, "POST", "/v1/instances", "{not json");
    expect(answer).toEqual({ status: 400, body: { error: { code: "invalid_json", message: expect.any(String) } } });
    expect((await api(daemon, "GET", "/v1/instances/i-0123456789abcdef0")).body.error.code).toBe("instance_not_found");
    expect((await api(daemon, "DELETE", "/v1/instances/../../etc")).status).toBe(404);
    expect((await api(daemon, "GET", "/v2/whatever")).status).toBe(404);
  });
});

describe("instances", () => {
  it("creates a host: user-data on disk (0600), agent on its own ports, idempotent by client_token", async () => {
    const daemon = await startDaemon();
    const created = await api(daemon, "POST", "/v1/instances", createBody("replica-0", { tags: { gateway: "edge" } }));
    expect(created.status).toBe(201);
    const instance = created.body as LocalInstance;
    expect(instance).toMatchObject({
      client_token: "replica-0",
      name: "gw-edge-0",
      state: "running",
      hostname: `127.0.0.1:${instance.http_port}`,
      tags: { gateway: "edge" },
      terminated_at: null,
    });
    expect(instance.instance_id).toMatch(/^i-[0-9a-f]{17}$/);
    expect(instance.https_port).not.toBe(instance.http_port);
    expect(alive(instance.pid!)).toBe(true);

    const userDataFile = path.join(stateDir, "instances", instance.instance_id, "user-data.json");
    expect(await readFile(userDataFile, "utf8")).toBe(JSON.stringify({ hello: "replica-0" }));
    expect((await stat(userDataFile)).mode & 0o777).toBe(0o600);
    await vi.waitFor(
      async () => expect(await hostAnswer(instance, "/user-data")).toBe(JSON.stringify({ hello: "replica-0" })),
      { timeout: 10_000 },
    );
    await vi.waitFor(
      async () =>
        expect(await readFile(path.join(stateDir, "instances", instance.instance_id, "agent.log"), "utf8")).toContain(
          "fake agent",
        ),
      { timeout: 10_000 },
    );

    const again = await api(daemon, "POST", "/v1/instances", createBody("replica-0"));
    expect(again).toEqual({ status: 200, body: instance });

    // Retries racing each other (an alarm firing twice) still make one host.
    const racing = await Promise.all(
      [1, 2, 3].map(() => api(daemon, "POST", "/v1/instances", createBody("replica-1"))),
    );
    expect(racing.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(racing.map((a) => a.body.instance_id)).size).toBe(1);
    expect((await api(daemon, "GET", "/v1/instances")).body.instances).toHaveLength(2);
  });

  it("describes and lists instances, optionally by client_token", async () => {
    const daemon = await startDaemon();
    const a = (await api(daemon, "POST", "/v1/instances", createBody("a"))).body as LocalInstance;
    const b = (await api(daemon, "POST", "/v1/instances", createBody("b"))).body as LocalInstance;
    expect((await api(daemon, "GET", `/v1/instances/${a.instance_id}`)).body).toEqual(a);
    const all = (await api(daemon, "GET", "/v1/instances")).body.instances as LocalInstance[];
    expect(all.map((i) => i.instance_id).sort()).toEqual([a.instance_id, b.instance_id].sort());
    expect((await api(daemon, "GET", "/v1/instances?client_token=b")).body).toEqual({ instances: [b] });
    expect((await api(daemon, "GET", "/v1/instances?client_token=zzz")).body).toEqual({ instances: [] });
    expect(new Set([a.http_port, a.https_port, b.http_port, b.https_port]).size).toBe(4);
  });

  it("terminates: stops the agent, frees the host, and answers the same again", async () => {
    const daemon = await startDaemon();
    const instance = (await api(daemon, "POST", "/v1/instances", createBody("t"))).body as LocalInstance;
    await vi.waitFor(() => hostAnswer(instance), { timeout: 10_000 });

    const deleted = await api(daemon, "DELETE", `/v1/instances/${instance.instance_id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ instance_id: instance.instance_id, state: "terminated", pid: null });
    expect(deleted.body.terminated_at).toEqual(expect.any(String));
    expect(alive(instance.pid!)).toBe(false);
    await expect(hostAnswer(instance)).rejects.toThrow();

    expect(await api(daemon, "DELETE", `/v1/instances/${instance.instance_id}`)).toEqual(deleted);
    expect((await api(daemon, "GET", `/v1/instances/${instance.instance_id}`)).body).toEqual(deleted.body);
    // The client token stays bound to the terminated host, as with EC2.
    expect(await api(daemon, "POST", "/v1/instances", createBody("t"))).toEqual({ status: 200, body: deleted.body });
  });

  it("kills an agent that ignores SIGTERM once the grace period is over", async () => {
    const daemon = await startDaemon({ stopGraceMs: 300 });
    const instance = (
      await api(daemon, "POST", "/v1/instances", createBody("stubborn", { tags: { ignore_term: "1" } }))
    ).body as LocalInstance;
    await vi.waitFor(() => hostAnswer(instance), { timeout: 10_000 });
    const started = Date.now();
    const deleted = await api(daemon, "DELETE", `/v1/instances/${instance.instance_id}`);
    expect(deleted.body.state).toBe("terminated");
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(alive(instance.pid!)).toBe(false);
  });

  it("restarts an agent that exits on its own and records why", async () => {
    const daemon = await startDaemon();
    const instance = (await api(daemon, "POST", "/v1/instances", createBody("crashy"))).body as LocalInstance;
    await vi.waitFor(() => hostAnswer(instance), { timeout: 10_000 });
    expect(await hostAnswer(instance, "/crash")).toBe("bye");

    let restarted: LocalInstance | undefined;
    await vi.waitFor(
      async () => {
        restarted = (await api(daemon, "GET", `/v1/instances/${instance.instance_id}`)).body;
        expect(restarted!.pid).not.toBeNull();
        expect(restarted!.pid).not.toBe(instance.pid);
      },
      { timeout: 5_000 },
    );
    expect(restarted!.state).toBe("running");
    expect(restarted!.state_reason).toMatch(/^agent exited with code 3; restarting in \d+ ms$/);
    await vi.waitFor(async () => expect(await hostAnswer(instance)).toBe(String(restarted!.pid)));
  });
});

describe("persistence", () => {
  it("keeps hosts across a daemon restart: running ones are relaunched on their ports, terminated ones stay down", async () => {
    const first = await startDaemon();
    const kept = (await api(first, "POST", "/v1/instances", createBody("kept"))).body as LocalInstance;
    const gone = (await api(first, "POST", "/v1/instances", createBody("gone"))).body as LocalInstance;
    await api(first, "DELETE", `/v1/instances/${gone.instance_id}`);
    await first.stop();
    expect(alive(kept.pid!)).toBe(false);

    const file = JSON.parse(await readFile(path.join(stateDir, "instances.json"), "utf8"));
    expect(file.instances.map((i: LocalInstance) => [i.client_token, i.state])).toEqual([
      ["kept", "running"],
      ["gone", "terminated"],
    ]);
    expect((await stat(path.join(stateDir, "instances.json"))).mode & 0o777).toBe(0o600);

    const second = await startDaemon();
    const relaunched = (await api(second, "GET", `/v1/instances/${kept.instance_id}`)).body as LocalInstance;
    expect(relaunched).toMatchObject({ state: "running", http_port: kept.http_port, created_at: kept.created_at });
    expect(relaunched.pid).not.toBe(kept.pid);
    await vi.waitFor(async () => expect(await hostAnswer(kept)).toBe(String(relaunched.pid)));
    expect((await api(second, "GET", `/v1/instances/${gone.instance_id}`)).body.state).toBe("terminated");
    expect(await api(second, "POST", "/v1/instances", createBody("kept"))).toMatchObject({ status: 200 });
  });

  it("after a daemon crash, replaces the agents it left behind but never kills a stranger reusing a pid", async () => {
    const [orphanPort, strangerPort] = await allocatePorts(2, new Set());
    const record = (id: string, port: number, pid: number): LocalInstance => ({
      instance_id: id,
      client_token: id,
      name: "gw",
      state: "running",
      hostname: `127.0.0.1:${port}`,
      http_port: port,
      https_port: port + 1,
      pid,
      tags: {},
      created_at: new Date().toISOString(),
      terminated_at: null,
      state_reason: null,
    });
    const launch = (env: Record<string, string>) => {
      const child = spawn(process.execPath, ["-e", FAKE_AGENT], {
        env: { PATH: process.env.PATH, FAKE_USER_DATA: "/dev/null", ...env },
        detached: true,
        stdio: "ignore",
      });
      child.unref();
      pids.add(child.pid!);
      return child.pid!;
    };
    const orphanId = "i-00000000000000001";
    const orphan = launch({ FAKE_PORT: String(orphanPort), GATEPLANE_INSTANCE_ID: orphanId });
    const stranger = launch({ FAKE_PORT: String(strangerPort) });
    const orphanHost = record(orphanId, orphanPort!, orphan);
    await vi.waitFor(async () => expect(await hostAnswer(orphanHost)).toBe(String(orphan)));
    await writeFile(
      path.join(stateDir, "instances.json"),
      JSON.stringify({ version: 1, instances: [orphanHost, record("i-00000000000000002", 1, stranger)] }),
    );

    const daemon = await startDaemon();
    expect(alive(orphan)).toBe(false);
    expect(alive(stranger)).toBe(true);
    const relaunched = (await api(daemon, "GET", `/v1/instances/${orphanId}`)).body as LocalInstance;
    expect(relaunched.pid).not.toBe(orphan);
    await vi.waitFor(async () => expect(await hostAnswer(orphanHost)).toBe(String(relaunched.pid)));
  });

  it("refuses to start on a corrupt state file instead of forgetting its hosts", async () => {
    await writeFile(path.join(stateDir, "instances.json"), '{"version": 1, "instances": [');
    await expect(startDaemon()).rejects.toBeInstanceOf(StateFileError);
  });
});
