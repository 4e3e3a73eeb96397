import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Agent, type AgentOptions, startAgent } from "../../agent/agent.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import {
  bootstrapFor,
  configDocument,
  FAST_SOCKET,
  get,
  memoryLog,
  type Replica,
  SECRET,
  startReplica,
} from "../support/agent-fixtures.ts";

// Configuration deltas between the agent and an in-test control plane that sends them (issue 17):
// versions as deltas over the WebSocket and the pull, a gap answered with resync, a NACKed delta, a
// bad service in a delta kept at its last good state, a reconnection after missed deltas.

const WAIT = { timeout: 10_000 };

let dir: string;
let cp: FakeControlPlane;
let one: Replica;
let two: Replica;
const agents: Agent[] = [];

async function start(
  overrides: Partial<AgentOptions> = {},
): Promise<{ agent: Agent; log: ReturnType<typeof memoryLog> }> {
  const log = memoryLog();
  const agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 0,
    adminPort: 0,
    heartbeatIntervalMs: 100,
    backoff: { initialMs: 20, maxMs: 100 },
    refusedRetryMs: 100,
    socket: FAST_SOCKET,
    poll: { fallbackAfterMs: 60_000, intervalMs: 60_000 },
    log,
    version: "9.9.9-test",
    ...overrides,
  });
  agents.push(agent);
  return { agent, log };
}

/** `llama` on `llamaUrl`, `echo` on `echoUrl`, and `more` extra services (`extra-<i>` on `one`). */
function doc(version: number, llamaUrl: string, echoUrl: string, more = 0): ConfigDocument {
  const base = configDocument(version, llamaUrl);
  const llama = base.services[0]!;
  const service = (name: string, url: string) => ({
    ...llama,
    name,
    host: `${name}.localhost`,
    replicas: [{ id: `${name}-1`, url }],
  });
  const services = [
    service("echo", echoUrl),
    ...Array.from({ length: more }, (_, i) => service(`extra-${i}`, one.url)),
    llama,
  ];
  return { ...base, services: services.sort((a, b) => (a.name < b.name ? -1 : 1)) };
}

const acks = () => cp.received("ack").map((m) => m.version);
const body = async (agent: Agent, host: string) => (await get(agent.httpPort, host)).body;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-deltas-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET, deltas: true });
  [one, two] = await Promise.all([startReplica("one"), startReplica("two")]);
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await cp.close();
  await Promise.all([one.close(), two.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe("configuration deltas over the WebSocket", () => {
  it("applies versions as deltas, answers a gap with resync, and persists the merged document", async () => {
    cp.setConfig(doc(1, one.url, one.url));
    const { agent, log } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    expect(cp.sockets[0]!.deltas).toBe(true);

    cp.setConfig(doc(2, one.url, two.url));
    await vi.waitFor(() => expect(acks()).toEqual([1, 2]), WAIT);
    expect(log.lines.some((l) => l.includes("applied config delta 1 → 2 from the WebSocket"))).toBe(true);
    expect(await body(agent, "echo.localhost")).toBe("two GET /");
    expect(await body(agent, "llama.localhost")).toBe("one GET /");

    // Version 3 never reaches the agent: the delta 3 → 4 is a gap, answered with resync from 2.
    cp.skipNextPush();
    cp.setConfig(doc(3, two.url, two.url));
    cp.setConfig(doc(4, two.url, two.url, 1));
    await vi.waitFor(() => expect(acks()).toEqual([1, 2, 4]), WAIT);
    expect(cp.received("resync").map((m) => m.version)).toEqual([2]);
    expect(cp.received("nack")).toEqual([]);
    expect(await body(agent, "llama.localhost")).toBe("two GET /");
    expect(await body(agent, "extra-0.localhost")).toBe("one GET /");
    expect(agent.configVersion).toBe(4);
    // What is persisted is the merged whole, as the control plane's own document of that version.
    await vi.waitFor(
      async () =>
        expect(JSON.parse(await readFile(path.join(dir, "config.json"), "utf8"))).toEqual(doc(4, two.url, two.url, 1)),
      WAIT,
    );
    expect(cp.messages.filter((m) => !m.valid)).toEqual([]);
  });

  it("NACKs a delta whose head is refused, and keeps a bad service of a delta at its last good state", async () => {
    cp.setConfig(doc(1, one.url, one.url));
    const { agent } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    const { version: _v, services: _s, ...head } = doc(1, one.url, one.url);

    cp.push({
      type: "config_delta",
      delta: {
        base_version: 1,
        version: 2,
        services: [],
        removed: [],
        head: { ...head, entrypoint: { host: "not a host!" } },
      },
    });
    await vi.waitFor(() => expect(cp.received("nack").map((m) => m.version)).toEqual([2]), WAIT);
    expect(cp.received("nack")[0]!.error).toContain("entrypoint.host");
    expect(agent.configVersion).toBe(1);

    // echo's update is refused (a field out of bounds): it keeps replica one; llama's applies.
    const next = doc(3, two.url, two.url);
    const echo = { ...next.services[0]!, client_max_body_size: -1 };
    cp.push({
      type: "config_delta",
      delta: { base_version: 1, version: 3, services: [echo, next.services[1]], removed: [] },
    });
    await vi.waitFor(() => expect(acks()).toEqual([1, 3]), WAIT);
    expect(cp.received("ack")[1]!.rejected).toEqual([
      { service: "echo", error: expect.stringContaining("services[0].client_max_body_size"), kept: true },
    ]);
    expect(await body(agent, "echo.localhost")).toBe("one GET /");
    expect(await body(agent, "llama.localhost")).toBe("two GET /");

    // A later delta that removes echo ends its refusal.
    cp.push({ type: "config_delta", delta: { base_version: 3, version: 4, services: [], removed: ["echo"] } });
    await vi.waitFor(() => expect(acks()).toEqual([1, 3, 4]), WAIT);
    expect(cp.received("ack")[2]!.rejected).toEqual([]);
    expect((await get(agent.httpPort, "echo.localhost")).status).toBe(404);
  });

  it("gets the whole document on reconnecting after the deltas it missed", async () => {
    cp.setConfig(doc(1, one.url, one.url));
    const { agent } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    cp.setWebSocket(false);
    cp.dropSockets();
    await vi.waitFor(() => expect(cp.openSockets()).toBe(0), WAIT);
    cp.setConfig(doc(2, two.url, one.url));
    cp.setConfig(doc(3, two.url, two.url, 2));
    cp.setWebSocket(true);
    await vi.waitFor(() => expect(acks()).toEqual([1, 3]), WAIT);
    expect(cp.received("resync")).toEqual([]);
    expect(await body(agent, "echo.localhost")).toBe("two GET /");
    expect(await body(agent, "extra-1.localhost")).toBe("one GET /");
    // And deltas again on the new connection.
    cp.setConfig(doc(4, one.url, two.url, 2));
    await vi.waitFor(() => expect(acks()).toEqual([1, 3, 4]), WAIT);
    expect(await body(agent, "llama.localhost")).toBe("one GET /");
  });
});

describe("configuration deltas over the HTTP fallback", () => {
  it("pulls ?since=<applied version> and applies the delta, ACKing over HTTP", async () => {
    cp.setWebSocket(false);
    cp.setConfig(doc(1, one.url, one.url));
    const { agent } = await start({ poll: { fallbackAfterMs: 50, intervalMs: 50 } });
    await vi.waitFor(() => expect(agent.configVersion).toBe(1), WAIT);
    // The boot pull has nothing applied: no `since`.
    expect(cp.routes("config")[0]!.query).toBe("");
    cp.setConfig(doc(2, one.url, two.url));
    await vi.waitFor(
      () => expect(cp.routes("ack").map((r) => r.body)).toContainEqual({ version: 2, error: null, rejected: [] }),
      WAIT,
    );
    expect(cp.routes("config").some((r) => r.query === "?since=1" && r.status === 200)).toBe(true);
    expect(await body(agent, "echo.localhost")).toBe("two GET /");
  });
});
