import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RouterReport } from "../../schema/agent-protocol.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../../test/fakes/control-plane/agent-api.ts";
import {
  bootstrapFor,
  configDocument,
  FAST_SOCKET,
  get,
  memoryLog,
  type Replica,
  SECRET,
  startReplica,
} from "../../test/support/agent-fixtures.ts";
import { routerPorts } from "../../test/support/ports.ts";
import { type Agent, type AgentOptions, startAgent } from "../agent.ts";
import { NOT_INSTALLED } from "./detect.ts";
import type { ServiceRouterTiming } from "./service-router.ts";

// The whole agent (control-plane link, config applier, real proxy) with a service whose router is
// sglang, the router being the fake SGLang Model Gateway run as a child process: traffic goes
// through it once it serves, only SGLang's paths are exposed, the mode reaches the control plane,
// and a crash or the router being switched off never interrupts the service.

const FAKE = path.resolve(import.meta.dirname, "../../test/fakes/sglang-router.mjs");
const FAKE_COMMAND = [process.execPath, FAKE];
const WAIT = { timeout: 30_000, interval: 20 };
const FAST_ROUTER: Partial<ServiceRouterTiming> = {
  probeIntervalMs: 20,
  syncIntervalMs: 50,
  backoff: { initialMs: 50, maxMs: 200 },
  stopGraceMs: 3_000,
};

let dir: string;
let cp: FakeControlPlane;
let replicas: Replica[];
let agent: Agent | null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-sglang-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  replicas = await Promise.all([startReplica("one"), startReplica("two")]);
  agent = null;
});

afterEach(async () => {
  await agent?.stop();
  await cp.close();
  await Promise.all(replicas.map((r) => r.close()));
  await rm(dir, { recursive: true, force: true });
});

async function start(sglang: AgentOptions["sglang"], overrides: Partial<AgentOptions> = {}): Promise<Agent> {
  agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 0,
    heartbeatIntervalMs: 100,
    backoff: { initialMs: 20, maxMs: 100 },
    socket: FAST_SOCKET,
    poll: { fallbackAfterMs: 300, intervalMs: 100 },
    log: memoryLog(),
    sglang: { ports: routerPorts(), timing: FAST_ROUTER, ...sglang },
    ...overrides,
  });
  return agent;
}

function routerDoc(version: number, policy: "round_robin" | null = "round_robin"): ConfigDocument {
  const doc = configDocument(version, replicas[0]!.url);
  doc.services[0]!.router = policy ? { type: "sglang", policy } : null;
  doc.services[0]!.replicas = replicas.map((r, i) => ({ id: `r${i}`, url: r.url }));
  return doc;
}

const reported = (): RouterReport[][] => cp.received("health").flatMap((m) => (m.routers ? [m.routers] : []));
const lastReport = () => reported().at(-1);
const routerPort = (a: Agent) => {
  const mode = a.routers.router("llama")?.mode;
  return mode?.mode === "external" ? mode.port : null;
};
const proxiedBy = async (port: number) =>
  ((await (await fetch(`http://127.0.0.1:${port}/_fake/state`)).json()) as { proxied: number }).proxied;

describe("a service whose router is sglang", () => {
  it("goes through the router once it serves, exposes only SGLang's paths, and reports its mode", async () => {
    cp.setConfig(routerDoc(1));
    const a = await start({ command: FAKE_COMMAND }, { adminPort: 0 });
    await vi.waitFor(() => expect(lastReport()).toEqual([{ service: "llama", mode: "external", reason: null }]), WAIT);
    // The control plane heard the way there too.
    expect(reported()).toContainEqual([{ service: "llama", mode: "built-in", reason: "sglang router starting" }]);
    const port = routerPort(a)!;

    const before = await proxiedBy(port);
    for (const p of ["/generate", "/v1/chat/completions", "/v1/models?x=1"]) {
      const answer = await get(a.httpPort, "llama.localhost", p);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatch(new RegExp(`^(one|two) GET ${p.replace("?", "\\?")}$`));
    }
    expect(await proxiedBy(port)).toBe(before + 3);
    // Measured at the gateway like direct traffic: the host's /metrics counts them for the service.
    const exposition = await (await fetch(`http://127.0.0.1:${a.adminPort}/metrics`)).text();
    const ok = exposition
      .split("\n")
      .filter(
        (l) => l.startsWith("gateplane_requests_total{") && l.includes('service="llama"') && l.includes('code="2xx"'),
      )
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    expect(ok).toBe(3);

    // The router's own API and anything else SGLang does not serve: 403 from the proxy.
    for (const p of [
      "/workers",
      "/add_worker?url=http://evil",
      "/metrics",
      "/",
      "/v1",
      "/v1/../workers",
      "/v1/%2e%2e/x",
    ]) {
      const answer = await get(a.httpPort, "llama.localhost", p);
      expect({ p, status: answer.status }).toEqual({ p, status: 403 });
    }
    expect(await proxiedBy(port)).toBe(before + 3);
    expect(cp.messages.filter((m) => !m.valid)).toEqual([]);
  });

  it("serves from the built-in balancer while a crashed router restarts, then through the new one", async () => {
    cp.setConfig(routerDoc(1));
    // Each launch holds before listening until the test lets it go: the new router stays away (the
    // built-in period lasts) for as long as the test looks at it.
    const hold = path.join(dir, "hold");
    await mkdir(hold);
    const release = (pid: number) => writeFile(path.join(hold, `${pid}.go`), "");
    const a = await start({ command: [...FAKE_COMMAND, "--fake-hold-dir", hold] });
    const launched = (launch: number) =>
      vi.waitFor(() => {
        const router = a.routers.router("llama");
        return router?.launches === launch && router.pid ? router.pid : Promise.reject(new Error("not launched"));
      }, WAIT);
    await release(await launched(1));
    const first = await vi.waitFor(() => routerPort(a) ?? Promise.reject(new Error("not external")), WAIT);
    await fetch(`http://127.0.0.1:${first}/_fake/crash`, { method: "POST" });

    await vi.waitFor(
      () =>
        expect(reported().map((r) => r[0]?.reason)).toContainEqual(
          expect.stringMatching(/^exited \(exit code 1\); restarting$/),
        ),
      WAIT,
    );
    // The new router runs, held before listening: the replicas answer directly (a request caught in
    // the instant between the crash and the switch would get the 502 of any upstream that died; none
    // is sent then here, and a request sent to the held router would fail).
    const secondPid = await launched(2);
    await vi.waitFor(() => expect(existsSync(path.join(hold, `${secondPid}.holding`))).toBe(true), WAIT);
    for (let i = 0; i < 6; i++) {
      expect((await get(a.httpPort, "llama.localhost", "/generate")).body).toMatch(/^(one|two) GET \/generate$/);
    }
    expect(a.routers.router("llama")!.mode).toEqual({ mode: "built-in", reason: "sglang router starting" });
    await release(secondPid);
    const second = await vi.waitFor(() => {
      const port = routerPort(a);
      return port !== null && port !== first ? port : Promise.reject(new Error("not back yet"));
    }, WAIT);
    await vi.waitFor(() => expect(lastReport()).toEqual([{ service: "llama", mode: "external", reason: null }]), WAIT);
    // Resynced: the new router has both workers and carries the traffic.
    const before = await proxiedBy(second);
    for (let i = 0; i < 2; i++) expect((await get(a.httpPort, "llama.localhost", "/generate")).status).toBe(200);
    expect(await proxiedBy(second)).toBe(before + 2);
  });

  it("goes back to the built-in balancer when the router is switched off", async () => {
    cp.setConfig(routerDoc(1));
    const a = await start({ command: FAKE_COMMAND });
    await vi.waitFor(() => expect(routerPort(a)).not.toBeNull(), WAIT);
    cp.setConfig(routerDoc(2, null));
    await vi.waitFor(() => expect(lastReport()).toEqual([]), WAIT);
    expect(a.routers.router("llama")).toBeNull();
    // No router: every path is the service's again.
    expect((await get(a.httpPort, "llama.localhost", "/anything")).body).toMatch(/^(one|two) GET \/anything$/);
  });

  it("runs on the built-in balancer where the router is not installed, reported in heartbeats too", async () => {
    cp.setConfig(routerDoc(1));
    cp.setWebSocket(false);
    const a = await start({ detect: async () => ({ installed: false, reason: NOT_INSTALLED }) });
    await vi.waitFor(() => {
      const beats = cp.routes("heartbeat").map((r) => (r.body as { routers?: unknown }).routers);
      expect(beats).toContainEqual([
        { service: "llama", mode: "built-in", reason: "sglang router not installed on this host" },
      ]);
    }, WAIT);
    expect((await get(a.httpPort, "llama.localhost", "/generate")).body).toMatch(/^(one|two) GET \/generate$/);
    // The path filter belongs to the service's router setting, not to the mode.
    expect((await get(a.httpPort, "llama.localhost", "/flush_cache")).status).toBe(403);
  });
});
