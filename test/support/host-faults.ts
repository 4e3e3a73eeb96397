/**
 * Host faults (issue 15; docs/gateway-host.md, docs/resilience.md): a steady request loop through a
 * host's standalone proxy (real sockets, 2 serving processes) while its agent is SIGKILLed and
 * restarted (as systemd or the local daemon would), upgraded (old stopped, a new version started:
 * the proxy is handed over to the new build's), and while a proxy serving process is SIGKILLed.
 * Shared by test/node/host-survival.test.ts (fewer rounds) and `npm run bench:faults` (all of them).
 *
 * A failure is "unavoidable" when its connection belonged to the killed serving process (its
 * exchanges in flight, or a request the client had already written on a kept-alive connection to
 * it): the client's to retry. Every other failure counts against the host.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { stopStandaloneProxy } from "../../agent/proxy-link.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { bootstrapFor, configDocument, type Replica, SECRET, startReplica } from "./agent-fixtures.ts";
import { freePorts } from "./ports.ts";

const ENTRY = fileURLToPath(new URL("../../bin/compiled-entry.mjs", import.meta.url));
const LAUNCH = `import { importEntry } from ${JSON.stringify(ENTRY)}; await importEntry("test/support/host-agent.ts");`;

export interface HostFaultCounts {
  agentKills: number;
  agentUpgrades: number;
  processKills: number;
}

export interface HostScenarioFigures {
  name: string;
  rounds: number;
  sent: number;
  /** Client-visible failures, unavoidable ones included. */
  failed: number;
  /** Failures on connections of the killed serving process (in flight there, or written to it). */
  unavoidable: number;
  /** Connections refused (nothing listened): must stay 0. */
  refused: number;
  /** Per round, until the host was whole again (agent attached, successor serving, process replaced). */
  recoverMs: number[];
  errors: string[];
}

interface Counts {
  sent: number;
  failed: number;
  unavoidable: number;
  refused: number;
  errors: string[];
}

/** Client ports of the TCP connections `pid` holds to `port` (from /proc: its socket inodes, then /proc/net/tcp). */
function clientPortsOf(pid: number, port: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {}
  }
  const ports = new Set<number>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9]!)) continue;
      const local = Number.parseInt(fields[1]!.split(":")[1]!, 16);
      const remote = Number.parseInt(fields[2]!.split(":")[1]!, 16);
      if (local === port && remote !== 0) ports.add(remote);
    }
  }
  return ports;
}

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

async function exited(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await done;
}

export interface HostFaults {
  /** Runs the scenarios in order under one request loop; figures per scenario. */
  run(counts: HostFaultCounts, onScenario?: (figures: HostScenarioFigures) => void): Promise<HostScenarioFigures[]>;
  close(): Promise<void>;
}

export async function startHostFaults(): Promise<HostFaults> {
  const dir = await mkdtemp(path.join(tmpdir(), "gp-host-faults-"));
  const cp: FakeControlPlane = await startFakeControlPlane({ bootstrapSecret: SECRET });
  const replica: Replica = await startReplica("one");
  const [httpPort] = (await freePorts(1)) as [number];
  cp.setConfig(configDocument(1, replica.url));
  const agents = new Set<ChildProcess>();
  const proxyPid = () => Number(readFileSync(path.join(dir, "proxy.pid"), "utf8"));

  /** Starts an agent of `version`; resolves once it is attached to (or has started) the proxy. */
  const startAgentProcess = async (version: string): Promise<ChildProcess> => {
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
  };

  /** Requests through the host, `workers` at a time, each over a kept-alive connection. */
  const requestLoop = (workers: number, pauseMs: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
    const counts: Counts = { sent: 0, failed: 0, unavoidable: 0, refused: 0, errors: [] };
    /** Client ports of the connections the killed process held (set by the process scenario). */
    const doomed = new Set<number>();
    let running = true;
    const once = () =>
      new Promise<void>((resolve) => {
        counts.sent++;
        let localPort = 0;
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
        req.on("socket", (socket: Socket) => {
          const note = () => {
            localPort = socket.localPort ?? 0;
          };
          if (socket.localPort) note();
          else socket.once("connect", note);
        });
        req.on("error", (error: NodeJS.ErrnoException) => {
          counts.failed++;
          // Nothing listened: the port was down, not a connection lost with the process that held it.
          if (error.code === "ECONNREFUSED") counts.refused++;
          else if (doomed.has(localPort)) counts.unavoidable++;
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
      doomed,
      async stop() {
        running = false;
        await Promise.all(loops);
        agent.destroy();
      },
    };
  };

  const served = async () => {
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        http
          .get({ port: httpPort, path: "/v1/models", headers: { host: "llama.localhost" } }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          })
          .on("error", () => resolve(false));
      });
      if (ok) return;
      if (i > 400) throw new Error("the host never served the document");
      await sleep(25);
    }
  };

  const run = async (counts: HostFaultCounts, onScenario?: (f: HostScenarioFigures) => void) => {
    let agent = await startAgentProcess("v0");
    // The document from the control plane is in force before the loop starts.
    await served();
    const loop = requestLoop(4, 5);
    const figures: HostScenarioFigures[] = [];
    const scenario = async (name: string, rounds: number, round: (i: number) => Promise<number>) => {
      // The errors' count, not the array: the spread copies the same array.
      const before = { ...loop.counts, errors: loop.counts.errors.length };
      const recoverMs: number[] = [];
      for (let i = 0; i < rounds; i++) recoverMs.push(await round(i));
      const f: HostScenarioFigures = {
        name,
        rounds,
        sent: loop.counts.sent - before.sent,
        failed: loop.counts.failed - before.failed,
        unavoidable: loop.counts.unavoidable - before.unavoidable,
        refused: loop.counts.refused - before.refused,
        recoverMs,
        errors: loop.counts.errors.slice(before.errors),
      };
      figures.push(f);
      onScenario?.(f);
    };
    try {
      const firstProxy = proxyPid();
      await scenario("agent SIGKILLed and restarted", counts.agentKills, async () => {
        await exited(agent, "SIGKILL");
        // Killed as soon as it has re-attached: the round's time is the agent's start.
        const at = Date.now();
        agent = await startAgentProcess("v0");
        return Date.now() - at;
      });
      if (proxyPid() !== firstProxy) throw new Error("an agent's restart replaced the proxy");

      let version = 0;
      await scenario("agent upgraded (old stopped, new version started)", counts.agentUpgrades, async () => {
        const before = proxyPid();
        await exited(agent, "SIGTERM");
        const at = Date.now();
        agent = await startAgentProcess(`v${++version}`);
        // The new build's proxy took over the sockets; the old one drains and goes.
        if (proxyPid() === before) throw new Error("the upgrade did not hand the proxy over");
        return Date.now() - at;
      });

      await scenario("proxy serving process SIGKILLed", counts.processKills, async () => {
        const parent = proxyPid();
        let children = childrenOf(parent);
        for (let wait = 0; children.length < 2 && wait < 400; wait++) {
          await sleep(10);
          children = childrenOf(parent);
        }
        const victim = children[0]!;
        // Stopped first, so it accepts nothing more while its connections are listed: the processes
        // accept from one shared socket, and a connection it took during the listing (a loaded
        // machine makes that take a while) would be lost with it yet counted as avoidable.
        process.kill(victim, "SIGSTOP");
        for (const port of clientPortsOf(victim, httpPort)) loop.doomed.add(port);
        process.kill(victim, "SIGKILL");
        const at = Date.now();
        // The parent starts a replacement at once; the other process keeps the port meanwhile.
        for (let wait = 0; childrenOf(parent).filter((pid) => pid !== victim).length < 2 && wait < 1_000; wait++) {
          await sleep(10);
        }
        // Serving: a fresh connection is answered (it may land on either process).
        await served();
        return Date.now() - at;
      });
    } finally {
      await loop.stop();
    }
    return figures;
  };

  return {
    run,
    async close() {
      for (const child of agents) child.kill("SIGKILL");
      await stopStandaloneProxy(dir, 10_000).catch(() => {});
      await cp.close();
      await replica.close();
      if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
      else console.log(dir);
    },
  };
}

/** One line per scenario: rounds, requests, failures (unavoidable apart), recovery mean and max. */
export function formatHostFigures(f: HostScenarioFigures): string {
  const mean = f.recoverMs.reduce((a, b) => a + b, 0) / Math.max(1, f.recoverMs.length);
  const max = Math.max(0, ...f.recoverMs);
  return (
    `${f.name}, ${f.rounds}×: ${f.sent} requests, ${f.failed} failed (${f.unavoidable} on the killed process's ` +
    `connections, ${f.refused} refused), recovered in ${Math.round(mean)} ms mean, ${max} ms max` +
    (f.errors.length > 0 ? `; errors: ${[...new Set(f.errors)].slice(0, 3).join("; ")}` : "")
  );
}
