import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { type HostDaemon, startHostDaemon } from "../../local-host/daemon.ts";
import type { AgentBootstrap } from "../../schema/agent.ts";
import type { LocalInstance } from "../../schema/local-host.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";

const TOKEN = "daemon-token-0123456789abcdef0123456789";
const SECRET = "bootstrap-secret-0123456789abcdef0123456789";

let stateDir: string;
let cp: FakeControlPlane;
let daemon: HostDaemon;

beforeEach(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "gp-daemon-agent-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  daemon = await startHostDaemon({ stateDir, token: TOKEN });
});

afterEach(async () => {
  await daemon.stop();
  await cp.close();
  await rm(stateDir, { recursive: true, force: true });
});

const call = async (method: string, route: string, body?: unknown) => {
  const response = await fetch(daemon.url + route, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await response.json()) as LocalInstance;
};

it("launches the real agent with the user-data: it registers, connects and serves on the host's port", async () => {
  const bootstrap: AgentBootstrap = {
    control_plane_url: cp.url,
    object_id: "ef".repeat(32),
    gateway_id: "5f0c6a36-8d3e-4c4b-9b7a-2c1f1f6f9e11",
    gateway_name: "edge",
    project_name: "main",
    replica_num: 0,
    bootstrap_secret: SECRET,
  };
  const instance = await call("POST", "/v1/instances", {
    client_token: "edge-0",
    name: "edge-0",
    user_data: JSON.stringify(bootstrap),
  });
  expect(instance.state).toBe("running");

  await vi.waitFor(() => expect(cp.sockets).toHaveLength(1), { timeout: 15_000 });
  expect(cp.routes("register")[0]!.body).toMatchObject({ gateway_id: bootstrap.gateway_id, replica_num: 0 });
  // The host's port is the proxy's: a host no service claims gets its 404.
  const unknown = await fetch(`http://${instance.hostname}/healthz`);
  expect(unknown.status).toBe(404);
  // The agent keeps its token beside its user-data: the instance directory is the host's disk.
  const tokenFile = path.join(stateDir, "instances", instance.instance_id, "agent-token.json");
  expect(JSON.parse(await readFile(tokenFile, "utf8")).token).toBe(cp.issued[0]);

  const terminated = await call("DELETE", `/v1/instances/${instance.instance_id}`);
  expect(terminated.state).toBe("terminated");
  await expect(fetch(`http://${instance.hostname}/healthz`)).rejects.toThrow();
  const log = await readFile(path.join(stateDir, "instances", instance.instance_id, "agent.log"), "utf8");
  expect(log).toMatch(/ info registered with /);
  expect(log).toMatch(/ info received SIGTERM; shutting down\n.* info agent stopped\n$/);
});
