/**
 * The host survives its agent (issue 15; docs/gateway-host.md): a steady request loop through a
 * host's standalone proxy (real sockets) while its agent is SIGKILLed and restarted 20 times (as
 * systemd or the local daemon would), upgraded 5 times (old stopped, new version started: the proxy
 * is handed over to the new build's), and while proxy child processes are killed. Prints requests
 * sent and failed per scenario; none may fail.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stopStandaloneProxy } from "../../agent/proxy-link.ts";
import { allocatePorts } from "../../local-host/ports.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { bootstrapFor, configDocument, type Replica, SECRET, startReplica } from "../support/agent-fixtures.ts";

const ENTRY = fileURLToPath(new URL("../../bin/compiled-entry.mjs", import.meta.url));
const LAUNCH = `import { importEntry } from ${JSON.stringify(ENTRY)}; await importEntry("test/support/host-agent.ts");`;

let dir: string;
let cp: FakeControlPlane;
let replica: Replica;
let httpPort: number;
const agents = new Set<ChildProcess>();

/** Starts an agent of `version`; resolves once it is attached to (or has started) the proxy. */
async function startAgentProcess(version: string): Promise<ChildProcess> {
  const spec = { userData: bootstrapFor(cp.url), stateDir: dir, httpPort, version, processes: 2 };
  const child = spawn(process.execPath, ["--input-type=module", "-e", LAUNCH], {
    env: { ...process.env, HOST_AGENT: JSON.stringify(spec) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agents.add(child);
  child.once("exit", () => agents.delete(child));
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      output += d;
      if (output.includes("ATTACHED")) resolve();
    });
    child.stderr!.on("data", (d: Buffer) => {
      output += d;
    });
    child.once("exit", (code) => reject(new Error(`agent exited (${code}) before attaching:\n${output}`)));
  });
  return child;
}

async function exited(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await done;
}

const proxyPid = () => Number(readFileSync(path.join(dir, "proxy.pid"), "utf8"));
/** The proxy's serving processes (its children). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const serving = readFileSync(`/proc/${entry}/cmdline`, "latin1").includes("proxy-process-main");
      if (Number(fields[1]) === pid && fields[0] !== "Z" && serving) children.push(Number(entry));
    } catch {}
  }
  return children;
}

/** Requests through the host, `workers` at a time, each over a kept-alive connection. */
function requestLoop(workers: number, pauseMs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const counts = { sent: 0, failed: 0, refused: 0, errors: [] as string[] };
  let running = true;
  const once = () =>
    new Promise<void>((resolve) => {
      counts.sent++;
      const req = http.get(
        { port: httpPort, host: "127.0.0.1", path: "/v1/models", headers: { host: "llama.localhost" }, agent },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode !== 200) {
              counts.failed++;
              counts.errors.push(`status ${res.statusCode}`);
            }
            resolve();
          });
        },
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        counts.failed++;
        // Nothing listened: the port was down, not a connection lost with the process that held it.
        if (error.code === "ECONNREFUSED") counts.refused++;
        counts.errors.push(error.message);
        resolve();
      });
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      await once();
      // Steady, not saturating: the restarts under test need the host's CPUs too.
      await sleep(pauseMs);
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-host-survival-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  replica = await startReplica("one");
  [httpPort] = (await allocatePorts(1, new Set())) as [number];
  cp.setConfig(configDocument(1, replica.url));
});

afterAll(async () => {
  for (const child of agents) child.kill("SIGKILL");
  await stopStandaloneProxy(dir, 10_000).catch(() => {});
  await cp?.close();
  await replica?.close();
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  else console.log(dir);
});

it("serves every request while its agent is killed 20 times, upgraded 5 times, and its proxy processes crash", {
  timeout: 60_000,
}, async () => {
  const started = Date.now();
  let agent = await startAgentProcess("v0");
  // The document from the control plane is in force before the loop starts.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ port: httpPort, path: "/v1/models", headers: { host: "llama.localhost" } }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on("error", () => resolve(false));
    });
    if (ok) break;
    if (i > 200) throw new Error("the host never served the document");
    await sleep(25);
  }
  const firstProxy = proxyPid();
  const loop = requestLoop(4, 5);
  const figures: Record<string, { sent: number; failed: number; refused: number; ms: number }> = {};
  const scenario = async (name: string, run: () => Promise<void>) => {
    const { sent, failed, refused } = loop.counts;
    const at = Date.now();
    await run();
    const f = {
      sent: loop.counts.sent - sent,
      failed: loop.counts.failed - failed,
      refused: loop.counts.refused - refused,
      ms: Date.now() - at,
    };
    figures[name] = f;
    console.log(
      `${name}: ${f.sent} requests sent, ${f.failed} failed (${f.refused} refused), over ${(f.ms / 1000).toFixed(1)} s`,
    );
  };

  await scenario("agent SIGKILLed and restarted, 20 times", async () => {
    for (let i = 0; i < 20; i++) {
      await exited(agent, "SIGKILL");
      agent = await startAgentProcess("v0");
    }
  });
  expect(proxyPid()).toBe(firstProxy);

  await scenario("agent upgraded (old stopped, new version started), 5 times", async () => {
    for (let i = 1; i <= 5; i++) {
      const before = proxyPid();
      await exited(agent, "SIGTERM");
      agent = await startAgentProcess(`v${i}`);
      // The new build's proxy took over the sockets; the old one drains and goes.
      expect(proxyPid()).not.toBe(before);
    }
  });

  await scenario("proxy child process SIGKILLed, 5 times", async () => {
    const parent = proxyPid();
    for (let i = 0; i < 5; i++) {
      const children = childrenOf(parent);
      expect(children.length).toBe(2);
      process.kill(children[0]!, "SIGKILL");
      // The parent starts a replacement; the other child keeps the port meanwhile.
      for (let wait = 0; childrenOf(parent).filter((pid) => pid !== children[0]).length < 2 && wait < 400; wait++) {
        await sleep(25);
      }
      await sleep(100);
    }
  });
  await loop.stop();

  console.log(
    `total ${((Date.now() - started) / 1000).toFixed(1)} s; errors: ${loop.counts.errors.slice(0, 5).join("; ")}`,
  );
  // The port never went down: no connection was refused in any scenario.
  for (const f of Object.values(figures)) expect(f.refused).toBe(0);
  expect(figures["agent SIGKILLed and restarted, 20 times"]!.failed).toBe(0);
  // Not 0 yet (docs/gateway-host.md, "Figures"): a draining process closes its idle keep-alive
  // connections, racing a client's next request on them; a crashed child loses the exchanges it held.
  expect(figures["agent upgraded (old stopped, new version started), 5 times"]!.failed).toBeLessThan(50);
  expect(figures["proxy child process SIGKILLed, 5 times"]!.failed).toBeLessThanOrEqual(5 * 4);
});
