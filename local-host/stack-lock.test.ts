import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StackError } from "./errors.ts";
import { claimStateDir, processStartTime, type StackLockFile, stackMarker } from "./stack-lock.ts";

/** Gone, or a zombie waiting for its reaper (orphans are reaped by PID 1 here, up to ~2 s later). */
async function stopped(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "latin1").catch(() => null);
  return stat === null || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

let dir: string;
const children: ChildProcess[] = [];
const lines: string[] = [];
const log = (line: string) => lines.push(line);

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-lock-"));
  lines.length = 0;
});

afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

/** A process in its own group that runs until killed, like the stack's wrangler. */
async function sleeper(env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)"], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, ...env },
  });
  children.push(child);
  await once(child, "spawn");
  return child;
}

const lockFile = () => path.join(dir, "stack.json");
const writeLock = (lock: StackLockFile) => writeFile(lockFile(), JSON.stringify(lock));
const readLock = async () => JSON.parse(await readFile(lockFile(), "utf8")) as StackLockFile;

describe("claimStateDir", () => {
  it("records this process and its wrangler, and removes the file on release", async () => {
    const lock = await claimStateDir(dir, "http://127.0.0.1:1", log);
    expect(await readLock()).toEqual({
      pid: process.pid,
      start_time: await processStartTime(process.pid),
      url: "http://127.0.0.1:1",
      wrangler_pid: null,
    });
    await lock.recordWrangler(4242);
    expect((await readLock()).wrangler_pid).toBe(4242);
    await lock.release();
    await expect(readFile(lockFile())).rejects.toThrow("ENOENT");
  });

  it("refuses a directory whose owner still runs, naming it, and changes nothing", async () => {
    const first = await claimStateDir(dir, "http://127.0.0.1:1", log);
    const before = await readFile(lockFile(), "utf8");
    const error = await claimStateDir(dir, "http://127.0.0.1:2", log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StackError);
    expect((error as Error).message).toContain(`is in use by a running stack (pid ${process.pid}`);
    expect((error as Error).message).toContain("http://127.0.0.1:1");
    expect(await readFile(lockFile(), "utf8")).toBe(before);
    await first.release();
  });

  it("takes over from a dead owner and stops its wrangler, verified by our marker", async () => {
    const owner = await sleeper();
    const ownerPid = owner.pid!;
    const ownerStart = await processStartTime(ownerPid);
    owner.kill("SIGKILL");
    await once(owner, "exit");
    const wrangler = await sleeper({ GATEPLANE_STACK_DIR: dir });
    const exited = once(wrangler, "exit");
    await writeLock({ pid: ownerPid, start_time: ownerStart, url: "x", wrangler_pid: wrangler.pid! });

    const lock = await claimStateDir(dir, "http://127.0.0.1:3", log);
    await exited;
    expect(lines).toEqual([
      `stopped wrangler dev (pid ${wrangler.pid}) left running by a stack that did not shut down (pid ${ownerPid})`,
    ]);
    expect((await readLock()).pid).toBe(process.pid);
    await lock.release();
  });

  it("stops what is left of the wrangler's group when wrangler itself died first", async () => {
    // A group leader that starts a child (as wrangler starts workerd) and exits.
    const leader = spawn(
      process.execPath,
      [
        "-e",
        "const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' }); console.log(c.pid); c.unref();",
      ],
      { detached: true, stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, GATEPLANE_STACK_DIR: dir } },
    );
    children.push(leader);
    let out = "";
    leader.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await once(leader, "exit");
    const orphan = Number(out.trim());
    expect(await processStartTime(orphan)).not.toBeNull();
    await writeLock({ pid: leader.pid!, start_time: "1", url: "x", wrangler_pid: leader.pid! });

    const lock = await claimStateDir(dir, "http://127.0.0.1:5", log);
    try {
      expect(lines).toHaveLength(1);
      expect(await stopped(orphan)).toBe(true);
    } finally {
      await lock.release();
      try {
        process.kill(-leader.pid!, "SIGKILL");
      } catch {}
    }
  });

  it("treats a reused pid as a dead owner and never kills a process without our marker", async () => {
    // Our own pid with another start time: the recorded owner is gone and its pid now names us.
    const stranger = await sleeper({ GATEPLANE_STACK_DIR: `${dir}-other` });
    await writeLock({ pid: process.pid, start_time: "1", url: "x", wrangler_pid: stranger.pid! });
    const lock = await claimStateDir(dir, "http://127.0.0.1:4", log);
    expect(lines).toEqual([]);
    expect(stranger.exitCode).toBeNull();
    expect(stackMarker(dir)).toBe(`GATEPLANE_STACK_DIR=${dir}`);
    await lock.release();
  });
});
