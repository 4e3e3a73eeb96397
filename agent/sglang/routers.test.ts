import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConfigDocument } from "../../schema/config-document.ts";
import type { RouterPolicy } from "../../schema/gateway.ts";
import { configDocument, memoryLog, type Replica, startReplica } from "../../test/support/agent-fixtures.ts";
import { routerPorts } from "../../test/support/ports.ts";
import { type Check, until as waitUntil } from "../../test/support/until.ts";
import { SglangRouterClient } from "./client.ts";
import { detectSglangRouter, NOT_INSTALLED, type RouterInstallation } from "./detect.ts";
import { PortAllocator, type PortRange } from "./ports.ts";
import { SglangRouters } from "./routers.ts";
import type { ServiceRouterTiming } from "./service-router.ts";

// The router supervision against the fake SGLang Model Gateway (test/fakes/sglang-router.ts), run as
// a child process exactly as the real one would be: launch flags, readiness, worker sync over both API
// generations, 202 eventual consistency, injected 5xx, crashes, removal. Timings are shrunk; where a
// test needs the router slow (starting, processing a job) the fake holds until the test lets it go.

const FAKE = path.resolve(import.meta.dirname, "../../test/fakes/sglang-router.mjs");
const fakeCommand = (...args: string[]) => [process.execPath, FAKE, ...args];
const installed =
  (command: string[]): (() => Promise<RouterInstallation>) =>
  async () => ({
    installed: true,
    command,
    source: "test",
  });

const FAST: ServiceRouterTiming = {
  startupTimeoutMs: 30_000,
  probeIntervalMs: 20,
  syncIntervalMs: 50,
  pendingAddTimeoutMs: 10_000,
  unresponsiveAfter: 3,
  backoff: { initialMs: 50, maxMs: 200 },
  stableAfterMs: 60_000,
  stopGraceMs: 3_000,
  requestTimeoutMs: 3_000,
  addTimeoutMs: 10_000,
};

/** Polls until `check` returns something truthy; generous, for a loaded machine. */
const until = <T>(what: string, check: Check<T>, timeoutMs = 30_000) => waitUntil(what, check, timeoutMs, 20);

interface FakeState {
  pid: number;
  argv: string[];
  policy: string;
  workers: string[];
  proxied: number;
  management_calls: string[];
}

const fakeState = async (port: number): Promise<FakeState> =>
  (await fetch(`http://127.0.0.1:${port}/_fake/state`)).json() as Promise<FakeState>;
const post = (port: number, pathAndQuery: string) =>
  fetch(`http://127.0.0.1:${port}${pathAndQuery}`, { method: "POST" });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A document with service `llama` on `urls`, its router as given. */
function doc(version: number, urls: string[], policy: RouterPolicy | null = "round_robin"): ConfigDocument {
  const base = configDocument(version, urls[0] ?? "http://127.0.0.1:1");
  base.services[0]!.router = policy ? { type: "sglang", policy } : null;
  base.services[0]!.replicas = urls.map((url, i) => ({ id: `r${i}`, url }));
  return base;
}

let replicas: Replica[];
let ports: PortRange;
let routers: SglangRouters[];
const pids = new Set<number>();
/** For `--fake-hold-dir`: a held fake writes `<pid>.holding` here and listens once `<pid>.go` exists. */
let holdDir: string;
const holding = (pid: number) => existsSync(path.join(holdDir, `${pid}.holding`));
const release = (pid: number) => writeFile(path.join(holdDir, `${pid}.go`), "");

beforeEach(async () => {
  holdDir = await mkdtemp(path.join(tmpdir(), "gp-sglang-hold-"));
  replicas = await Promise.all([startReplica("one"), startReplica("two"), startReplica("three")]);
  ports = routerPorts();
  routers = [];
});

afterEach(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  pids.clear();
  await Promise.all(replicas.map((r) => r.close()));
  await rm(holdDir, { recursive: true, force: true });
});

function start(detect: () => Promise<RouterInstallation>, timing: Partial<ServiceRouterTiming> = {}) {
  const applied: ConfigDocument[] = [];
  const log = memoryLog();
  /** Every report as it changed: a state that lasts a back-off (a few ms) is seen by no poll on a loaded machine. */
  const history: ReturnType<SglangRouters["reports"]> = [];
  const r: SglangRouters = new SglangRouters({
    detect,
    ports,
    timing: { ...FAST, ...timing },
    log,
    applyToProxy: async (document) => {
      applied.push(structuredClone(document));
    },
    onReportsChange: () => history.push(...structuredClone(r.reports())),
  });
  routers.push(r);
  const served = () => applied.at(-1)?.services[0]?.replicas.map((x) => x.url) ?? [];
  /**
   * The router's port once traffic goes through it: its mode is external and the proxy's last
   * document sends the service there (the agent applies the switch after the mode changes).
   */
  const external = () =>
    until("traffic through the router", () => {
      const mode = r.router("llama")?.mode;
      if (mode?.mode !== "external") return null;
      pids.add(mode.pid!);
      return served().join() === `http://127.0.0.1:${mode.port}` ? mode.port : null;
    });
  return { routers: r, applied, served, log, external, history };
}

describe.each(["workers", "legacy"] as const)("with the %s worker API", (api) => {
  it("launches with the launch flags, waits for readiness, registers the replicas, then switches traffic", async () => {
    const urls = [replicas[0]!.url, replicas[1]!.url];
    const h = start(installed(fakeCommand("--fake-api", api, "--fake-hold-dir", holdDir)));
    await h.routers.apply(doc(1, urls));
    // Until the router serves, traffic stays on the replicas, and the report says why.
    expect(h.served()).toEqual(urls);
    expect(h.routers.reports()).toEqual([{ service: "llama", mode: "built-in", reason: "sglang router starting" }]);
    // The process runs but does not listen yet (it was probed before it even started): still built-in.
    const pid = await until("the router process", () => h.routers.router("llama")?.pid);
    pids.add(pid);
    await until("the router holding", () => holding(pid));
    expect(h.served()).toEqual(urls);
    expect(h.routers.reports()).toEqual([{ service: "llama", mode: "built-in", reason: "sglang router starting" }]);
    await release(pid);

    const port = await h.external();
    expect(h.served()).toEqual([`http://127.0.0.1:${port}`]);
    expect(h.routers.reports()).toEqual([{ service: "llama", mode: "external", reason: null }]);
    const state = await fakeState(port);
    const prometheusPort = Number(state.argv[state.argv.indexOf("--prometheus-port") + 1]);
    expect(state.argv.join(" ")).toContain(
      `--host 127.0.0.1 --port ${port} --policy round_robin --prometheus-host 127.0.0.1 --prometheus-port ${prometheusPort}`,
    );
    expect(port).toBeGreaterThanOrEqual(ports.from);
    expect(prometheusPort).toBeLessThanOrEqual(ports.to);
    expect((await fetch(`http://127.0.0.1:${prometheusPort}/metrics`)).status).toBe(200);
    await until("both workers", async () => (await fakeState(port)).workers.length === 2);
    expect((await fakeState(port)).workers.sort()).toEqual([...urls].sort());
    // And it routes: the fake proxies inference paths to the workers.
    const answer = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(await answer.text()).toMatch(/^(one|two) GET \/v1\/models$/);
  });

  it("keeps the worker set equal to the replicas as they come and go", async () => {
    const h = start(installed(fakeCommand("--fake-api", api)));
    await h.routers.apply(doc(1, [replicas[0]!.url, replicas[1]!.url]));
    const port = await h.external();
    await until("two workers", async () => (await fakeState(port)).workers.length === 2);

    await h.routers.apply(doc(2, [replicas[1]!.url, `${replicas[2]!.url}/`]));
    await until("the new set", async () => {
      const workers = (await fakeState(port)).workers.sort();
      return JSON.stringify(workers) === JSON.stringify([replicas[1]!.url, replicas[2]!.url].sort());
    });
    const calls = (await fakeState(port)).management_calls;
    if (api === "workers") {
      expect(calls).toContain("POST /workers");
      expect(calls.some((c) => c.startsWith("DELETE /workers/"))).toBe(true);
    } else {
      expect(calls).toEqual(expect.arrayContaining(["POST /add_worker", "POST /remove_worker", "GET /list_workers"]));
    }
    // The proxy kept going through the same router the whole time (the log says why, if not).
    expect(h.routers.router("llama")!.launches, h.log.lines.join("\n")).toBe(1);
    expect(h.served()).toEqual([`http://127.0.0.1:${port}`]);

    // No replicas left: the router is emptied and traffic goes back to the (empty) built-in balancer.
    await h.routers.apply(doc(3, []));
    await until("built-in", () => h.routers.reports()[0]?.mode === "built-in");
    expect(h.routers.reports()[0]?.reason).toBe("service has no replicas");
    await until("no workers", async () => (await fakeState(port)).workers.length === 0);
    // The switch reaches the proxy after the mode changed (as in `external()`).
    await until("the proxy's document on the built-in balancer", () => h.served().length === 0);
  });

  it("restarts a crashed router, resyncs it, and serves from the built-in balancer meanwhile", async () => {
    const urls = [replicas[0]!.url, replicas[1]!.url];
    const h = start(installed(fakeCommand("--fake-api", api)));
    await h.routers.apply(doc(1, urls));
    const first = await h.external();
    const firstPid = (await fakeState(first)).pid;
    const crashedAt = h.history.length;
    await post(first, "/_fake/crash");

    await until("built-in after the crash", () => h.served().join() === urls.join());
    // A sync in flight when the process dies may report "not answering" first; the exit then says
    // the router restarts, still on the built-in balancer (until its back-off ends: from the history).
    const report = await until(
      "reported as restarting",
      () => h.history.slice(crashedAt).find((r) => /restart/.test(r.reason ?? "")) ?? null,
    );
    expect(report.mode).toBe("built-in");
    expect(report.reason).toMatch(/restart/);
    await until("a second launch", () => h.routers.router("llama")!.launches === 2);
    const second = await h.external();
    const state = await until("resynced", async () => {
      const s = await fakeState(second);
      return s.workers.length === 2 ? s : null;
    });
    expect(state.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
    expect(h.served()).toEqual([`http://127.0.0.1:${second}`]);
    expect(h.log.lines.some((l) => l.includes("sglang router for llama: exited (exit code 1)"))).toBe(true);
  });
});

describe("supervision", () => {
  it("does not post an accepted (202) worker again while the router still processes it", async () => {
    const h = start(installed(fakeCommand("--fake-jobs", "held")));
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    const port = await until("a router", () => h.routers.router("llama")?.port);
    // The job stays pending until released: wait for several syncs that found it pending.
    const calls = await until("syncs after the POST", async () => {
      const { management_calls: c } = await fakeState(port);
      const posted = c.indexOf("POST /workers");
      return posted >= 0 && c.slice(posted + 1).filter((x) => x === "GET /workers").length > 3 ? c : null;
    });
    expect(calls.filter((c) => c === "POST /workers")).toHaveLength(1);
    expect(h.routers.reports()[0]).toMatchObject({ mode: "built-in" });
    await post(port, "/_fake/run-jobs");
    expect(await h.external()).toBe(port);
    const state = await fakeState(port);
    expect(state.management_calls.filter((c) => c === "POST /workers")).toHaveLength(1);
    expect(state.workers).toEqual([replicas[0]!.url]);
  });

  it("posts again a worker whose job failed, once the pending window is over", async () => {
    const h = start(
      installed(fakeCommand("--fake-job-delay-ms", "0", "--fake-worker-startup-timeout-ms", "100")),
      // Past the job's failure (at most ~0.2 s after the POST).
      { pendingAddTimeoutMs: 400 },
    );
    const late = await startReplica("late");
    const url = late.url;
    await late.close();
    // The replica is down: the router's job fails, the worker never shows up, traffic stays built-in.
    await h.routers.apply(doc(1, [url]));
    const port = await until("a router", () => h.routers.router("llama")?.port);
    pids.add((await until("its state", () => fakeState(port))).pid);
    await until("two posts", async () => {
      const calls = (await fakeState(port)).management_calls;
      return calls.filter((c) => c === "POST /workers").length >= 2;
    });
    expect(h.routers.reports()[0]).toEqual({
      service: "llama",
      mode: "built-in",
      reason: "sglang router lists none of the service's 1 replicas yet",
    });
    expect(h.served()).toEqual([url]);
  });

  it("retries worker calls the router answers with 5xx, without restarting it", async () => {
    const h = start(installed(fakeCommand()));
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    const port = await h.external();
    await post(port, "/_fake/fail?count=4&status=500");
    await h.routers.apply(doc(2, [replicas[0]!.url, replicas[1]!.url]));
    await until("the second worker", async () => (await fakeState(port)).workers.length === 2);
    expect(h.routers.router("llama")!.launches).toBe(1);
    expect(h.log.lines.some((l) => l.includes("worker sync failed (GET /workers: HTTP 500"))).toBe(true);
  });

  it("takes a wedged router out of traffic at once, and restarts it", async () => {
    const h = start(installed(fakeCommand()), { requestTimeoutMs: 250, stopGraceMs: 200 });
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    const port = await h.external();
    const { pid } = await fakeState(port);
    process.kill(pid, "SIGSTOP");
    try {
      await until("built-in", () => h.served().join() === replicas[0]!.url);
      expect(h.routers.reports()[0]?.reason).toMatch(
        /^sglang router not answering \(GET \/workers: no answer within 250 ms\)$/,
      );
      await until("a new router", () => h.routers.router("llama")!.launches === 2);
      await until("gone", () => !alive(pid));
      const second = await h.external();
      expect(second).not.toBe(port);
      expect(h.log.lines.some((l) => l.includes("unresponsive (GET /workers: no answer within 250 ms)"))).toBe(true);
    } finally {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });

  it("stops the router when the service goes, and when the service drops the router", async () => {
    const h = start(installed(fakeCommand()));
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    const port = await h.external();
    const pid = (await fakeState(port)).pid;

    // Router switched off: the same apply already routes to the replicas; the process then stops.
    await h.routers.apply(doc(2, [replicas[0]!.url], null));
    expect(h.applied.at(-1)!.services[0]!.replicas.map((r) => r.url)).toEqual([replicas[0]!.url]);
    await until("process gone", () => !alive(pid));
    expect(h.routers.reports()).toEqual([]);

    // On again, then the service is deleted.
    await h.routers.apply(doc(3, [replicas[0]!.url]));
    const again = await h.external();
    const pid2 = (await fakeState(again)).pid;
    const empty = doc(4, []);
    empty.services = [];
    await h.routers.apply(empty);
    await until("second process gone", () => !alive(pid2));
    expect(h.routers.router("llama")).toBeNull();
  });

  it("restarts the router with the new policy when the policy changes", async () => {
    const h = start(installed(fakeCommand()));
    await h.routers.apply(doc(1, [replicas[0]!.url], "round_robin"));
    const first = await h.external();
    await h.routers.apply(doc(2, [replicas[0]!.url], "cache_aware"));
    await until("relaunched", () => h.routers.router("llama")!.launches === 2);
    const second = await h.external();
    expect((await fakeState(second)).policy).toBe("cache_aware");
    expect(second).not.toBe(first);
  });

  it("reports a router that dies at start, and keeps trying with back-off", async () => {
    const h = start(installed([process.execPath, "-e", "console.error('no such model'); process.exit(3)", "--"]));
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    await until("two launches", () => (h.routers.router("llama")?.launches ?? 0) >= 2);
    expect(h.routers.reports()[0]!.mode).toBe("built-in");
    expect(
      h.log.lines.some((l) =>
        l.includes("sglang router for llama: exited during startup (exit code 3): no such model; starting it again in"),
      ),
    ).toBe(true);
    expect(h.served()).toEqual([replicas[0]!.url]);
  });

  it("uses the built-in balancer, and says so, where the router is not installed", async () => {
    const h = start(async () => ({ installed: false, reason: NOT_INSTALLED }));
    await h.routers.apply(doc(1, [replicas[0]!.url]));
    expect(h.routers.reports()).toEqual([
      { service: "llama", mode: "built-in", reason: "sglang router not installed on this host" },
    ]);
    expect(h.served()).toEqual([replicas[0]!.url]);
    expect(h.log.lines.some((l) => l.includes("not installed"))).toBe(true);
  });
});

describe("PD services", () => {
  it("stay on the built-in PD routing, saying why, where the router is not installed", async () => {
    let detected = 0;
    const h = start(async () => {
      detected++;
      return { installed: false, reason: NOT_INSTALLED };
    });
    const pd = doc(1, [replicas[0]!.url, replicas[1]!.url]);
    pd.services[0]!.router = {
      type: "sglang",
      policy: "cache_aware",
      pd_disaggregation: true,
      prefill_policy: "cache_aware",
      decode_policy: "power_of_two",
    };
    await h.routers.apply(pd);
    expect(h.routers.reports()).toEqual([{ service: "llama", mode: "built-in", reason: NOT_INSTALLED }]);
    expect(h.served()).toEqual([replicas[0]!.url, replicas[1]!.url]);
    expect(detected).toBe(1);
  });
});

describe("detection and ports", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gp-sglang-detect-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prefers the operator's command, then sgl-model-gateway, then smg, else says it is not installed", async () => {
    expect(await detectSglangRouter({ override: ["/opt/x/router"], env: { PATH: dir } })).toEqual({
      installed: true,
      command: ["/opt/x/router"],
      source: "--sglang-router-command",
    });
    expect(await detectSglangRouter({ env: { PATH: dir } })).toEqual({ installed: false, reason: NOT_INSTALLED });
    const smg = path.join(dir, "smg");
    await writeFile(smg, "#!/bin/sh\nexit 0\n");
    await chmod(smg, 0o755);
    expect(await detectSglangRouter({ env: { PATH: dir } })).toMatchObject({
      installed: true,
      command: [smg, "launch"],
    });
    const gateway = path.join(dir, "sgl-model-gateway");
    await writeFile(gateway, "#!/bin/sh\nexit 0\n");
    await chmod(gateway, 0o755);
    expect(await detectSglangRouter({ env: { PATH: dir } })).toMatchObject({ command: [gateway] });
  });

  it("hands out distinct free ports from the range and refuses when it is exhausted", async () => {
    const allocator = new PortAllocator({ from: ports.from, to: ports.from + 3 });
    const a = await allocator.take();
    const b = await allocator.take();
    expect(new Set([...a, ...b]).size).toBe(4);
    await expect(allocator.take()).rejects.toThrow(`no free ports left in ${ports.from}-${ports.from + 3}`);
    allocator.release(a);
    expect((await allocator.take()).sort()).toEqual([...a].sort());
  });

  it("tells a router that answers nothing from one that refuses", async () => {
    const client = new SglangRouterClient(`http://127.0.0.1:${ports.from + 50}`, { timeoutMs: 1000 });
    await expect(client.generation()).rejects.toMatchObject({ status: null });
  });
});
