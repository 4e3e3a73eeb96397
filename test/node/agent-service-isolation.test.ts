/**
 * Issue 11 item 2(b): one service the agent cannot apply must not freeze the gateway. The agent
 * applies the rest of the document, keeps a refused service at its last good state (or leaves a new
 * one out), and its ACK names the service and the field; later changes still go through.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Agent, startAgent } from "../../agent/agent.ts";
import { startProxy } from "../../proxy/index.ts";
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

const WAIT = { timeout: 10_000 };

let dir: string;
let cp: FakeControlPlane;
let replicas: Replica[];
let agent: Agent | null = null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-isolation-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  replicas = await Promise.all([startReplica("one"), startReplica("two"), startReplica("three")]);
});

afterEach(async () => {
  await agent?.stop();
  agent = null;
  await cp.close();
  await Promise.all(replicas.map((r) => r.close()));
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<Agent> {
  agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 0,
    adminPort: 0,
    startProxy,
    heartbeatIntervalMs: 100,
    backoff: { initialMs: 20, maxMs: 100 },
    refusedRetryMs: 100,
    socket: FAST_SOCKET,
    poll: { fallbackAfterMs: 300, intervalMs: 100 },
    log: memoryLog(),
    version: "9.9.9-test",
  });
  return agent;
}

/** `llama` on replica `llamaUrl`, `echo` on `echoUrl`, plus `extra` services (raw, to carry bad values). */
function documentWith(version: number, llamaUrl: string, echoUrl: string, echo: object = {}, extra: object[] = []) {
  const doc = configDocument(version, llamaUrl) as ConfigDocument & { services: unknown[] };
  const llama = doc.services[0] as ConfigDocument["services"][number];
  doc.services.push({
    ...llama,
    name: "echo",
    host: "echo.localhost",
    replicas: [{ id: "echo-1", url: echoUrl }],
    ...echo,
  });
  for (const e of extra) doc.services.push({ ...llama, replicas: [], ...e });
  return doc;
}

const acks = () => cp.received("ack");

describe("a service the agent cannot apply", () => {
  it("is isolated: the others are served, later changes apply, and the ACK names it", async () => {
    const [one, two, three] = replicas.map((r) => r.url) as [string, string, string];
    cp.setConfig(documentWith(1, one, two));
    const a = await start();
    await vi.waitFor(() => expect(acks().map((m) => m.version)).toEqual([1]), WAIT);
    expect(acks()[0]!.rejected).toEqual([]);

    // echo gets a body limit no proxy can honour (1e20 bytes; Infinity travels as null), and a new
    // service arrives with an unsafe burst: both are refused, the document is not.
    cp.setConfig(
      documentWith(2, one, three, { client_max_body_size: 1e20 }, [
        {
          name: "fresh",
          host: "fresh.localhost",
          rate_limits: [{ prefix: "/", key: { type: "ip_address" }, rps: 1, burst: 1e16 }],
        },
      ]),
    );
    await vi.waitFor(() => expect(acks().map((m) => m.version)).toEqual([1, 2]), WAIT);
    expect(cp.received("nack")).toEqual([]);
    expect(acks()[1]!.rejected).toEqual([
      { service: "echo", error: expect.stringMatching(/^services\[1\]\.client_max_body_size: /), kept: true },
      { service: "fresh", error: expect.stringMatching(/^services\[2\]\.rate_limits\[0\]\.burst: /), kept: false },
    ]);
    // echo keeps its last good state (replica two, not three); fresh is not served.
    expect(await get(a.httpPort, "echo.localhost")).toMatchObject({ status: 200, body: "two GET /" });
    expect((await get(a.httpPort, "fresh.localhost")).status).toBe(404);
    expect(await get(a.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "one GET /" });

    // A later change on another service (a new replica of llama) is applied while echo stays refused.
    cp.setConfig(documentWith(3, three, three, { client_max_body_size: null }));
    await vi.waitFor(() => expect(acks().map((m) => m.version)).toEqual([1, 2, 3]), WAIT);
    expect(acks()[2]!.rejected).toEqual([
      { service: "echo", error: expect.stringContaining("services[1].client_max_body_size"), kept: true },
    ]);
    expect(await get(a.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "three GET /" });
    expect(await get(a.httpPort, "echo.localhost")).toMatchObject({ status: 200, body: "two GET /" });
    expect(a.configVersion).toBe(3);
    const healthz = await (await fetch(`http://127.0.0.1:${a.adminPort}/healthz`)).json();
    expect(healthz).toMatchObject({ config_version: 3, rejected_services: [{ service: "echo", kept: true }] });
    // What is persisted is what is served: a restart comes back with echo's last good state.
    const persisted = JSON.parse(await readFile(path.join(dir, "config.json"), "utf8")) as ConfigDocument;
    expect(persisted.services.find((s) => s.name === "echo")!.replicas).toEqual([{ id: "echo-1", url: two }]);

    // Fixed: echo follows the document again and the ACK lists nothing.
    cp.setConfig(documentWith(4, three, three));
    await vi.waitFor(() => expect(acks().map((m) => m.version)).toEqual([1, 2, 3, 4]), WAIT);
    expect(acks()[3]!.rejected).toEqual([]);
    expect(await get(a.httpPort, "echo.localhost")).toMatchObject({ status: 200, body: "three GET /" });
  });

  it("still NACKs a document whose envelope is broken (nothing of it can be trusted)", async () => {
    const [one, two] = replicas.map((r) => r.url) as [string, string];
    cp.setConfig(documentWith(1, one, two));
    await start();
    await vi.waitFor(() => expect(acks()).toHaveLength(1), WAIT);
    cp.setConfig({ ...documentWith(2, two, two), gateway: "nope" });
    await vi.waitFor(() => expect(cp.received("nack")).toHaveLength(1), WAIT);
    expect(cp.received("nack")[0]).toMatchObject({ version: 2, error: expect.stringContaining("gateway") });
  });
});
