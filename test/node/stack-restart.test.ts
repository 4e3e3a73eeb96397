/**
 * `npm start` as real processes: a stack killed with SIGKILL (its process group only) leaves
 * wrangler and the agents running in their own groups; the next start on the same state directory
 * stops those leftovers and starts, and a second stack on a directory in use is refused without
 * touching it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StackLockFile } from "../../local-host/stack-lock.ts";
import type { LocalInstance } from "../../schema/local-host.ts";
import { freePort, ROOT, until } from "../support/stack.ts";

let dir: string;
let port: number;
/** Process groups this test may have left behind, killed in afterAll whatever happened. */
const groups = new Set<number>();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-restart-"));
  port = await freePort();
});

afterAll(async () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {}
  }
  await rm(dir, { recursive: true, force: true });
}, 30_000);

interface Started {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null if killed by a signal). */
  exited: Promise<number | null>;
}

/** `npm start -- --port … --dir …`, as its own process group like a terminal's foreground job. */
function startProcess(stackPort: number): Started {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "scripts/start.ts", "--port", String(stackPort), "--dir", dir, "--quiet"],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  groups.add(child.pid!);
  const started: Started = {
    child,
    stdout: "",
    stderr: "",
    exited: once(child, "exit").then(([code]) => code as number | null),
  };
  child.stdout!.on("data", (d: Buffer) => (started.stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (started.stderr += d.toString()));
  return started;
}

/** Resolves once the stack printed its banner; fails with its output if it exits first. */
async function running(started: Started): Promise<void> {
  const ready = new Promise<void>((resolve) => {
    const check = () => started.stdout.includes("Gateplane is running") && resolve();
    started.child.stdout!.on("data", check);
    check();
  });
  const failed = started.exited.then((code) => {
    throw new Error(`npm start exited with ${code}:\n${started.stderr}${started.stdout}`);
  });
  await Promise.race([ready, failed]);
}

/** Whether `pid` runs (a zombie waiting to be reaped does not). */
async function runs(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The `wrangler dev` processes (and their node children) running on this test's state directory. */
async function wranglerPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const args = cmdline.split("\0");
    if (args.includes("dev") && args.includes(path.join(dir, "wrangler")) && (await runs(Number(entry)))) {
      pids.push(Number(entry));
    }
  }
  return pids;
}

const lockFile = async () => JSON.parse(await readFile(path.join(dir, "stack.json"), "utf8")) as StackLockFile;
const agentPids = async () => {
  const state = JSON.parse(await readFile(path.join(dir, "hosts/instances.json"), "utf8")) as {
    instances: LocalInstance[];
  };
  return state.instances.filter((i) => i.state !== "terminated").map((i) => i.pid);
};

describe("npm start after a SIGKILL", () => {
  it("stops its own leftovers, starts, and refuses a second stack on the same directory", async () => {
    const first = startProcess(port);
    await running(first);
    const apply = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, "bin/gateplane.mjs"), "apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y"],
      { cwd: ROOT, env: { ...process.env, GATEPLANE_CONFIG: path.join(dir, "config.json"), NO_COLOR: "1" } },
    );
    expect(apply.stdout).toMatch(/local-gateway.*running/);
    const wrangler = await wranglerPids();
    expect(wrangler.length).toBeGreaterThan(0);
    const [agent] = await agentPids();
    expect(agent).toBeGreaterThan(0);
    for (const pid of wrangler) groups.add(pid);
    groups.add(agent!);

    process.kill(-first.child.pid!, "SIGKILL");
    await first.exited;
    // The orphans: they run in process groups of their own.
    expect((await wranglerPids()).sort()).toEqual(wrangler.sort());
    expect(await runs(agent!)).toBe(true);

    const second = startProcess(port);
    await running(second);
    await until(
      "the old wrangler and agent gone",
      async () => !(await Promise.all([...wrangler, agent!].map(runs))).includes(true),
      10_000,
    );
    const newWrangler = (await lockFile()).wrangler_pid!;
    groups.add(newWrangler);
    expect(wrangler).not.toContain(newWrangler);
    const [newAgent] = await until("the agent relaunched", async () => {
      const pids = await agentPids();
      return pids[0] && pids[0] !== agent && (await runs(pids[0])) ? pids : null;
    });
    groups.add(newAgent!);

    const config = await readFile(path.join(dir, "config.json"), "utf8");
    const third = startProcess(await freePort());
    expect(await third.exited).toBe(1);
    expect(third.stderr).toContain(
      `is in use by a running stack (pid ${second.child.pid}, control plane at http://127.0.0.1:${port})`,
    );
    expect(await readFile(path.join(dir, "config.json"), "utf8")).toBe(config);
    expect((await lockFile()).pid).toBe(second.child.pid);
    expect(await runs(newAgent!)).toBe(true);

    second.child.kill("SIGINT");
    expect(await second.exited).toBe(0);
    await expect(readFile(path.join(dir, "stack.json"))).rejects.toThrow("ENOENT");
    expect(await wranglerPids()).toEqual([]);
    expect(await runs(newAgent!)).toBe(false);
  }, 180_000);
});
