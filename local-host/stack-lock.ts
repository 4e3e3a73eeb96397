/**
 * @module
 * One stack per state directory, and no orphans from the last one. `<dir>/stack.json` names the
 * `npm start` process that owns the directory (pid and start time, since pids are reused) and the
 * `wrangler dev` it runs. Wrangler and the agents run in process groups of their own, so a stack
 * killed with SIGKILL leaves them running, holding its ports; the next start finds them here and
 * stops them (agents are the daemon's: it stops the ones its state file names, `daemon.ts`). A
 * second stack on a directory whose owner still runs is refused: it would rewrite `config.json`
 * and fight the first over the hosts.
 */
import { open, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { StackError } from "./errors.ts";
import { isGroupAlive, isProcessMarked, stopProcessGroup } from "./process-group.ts";

/** Set in wrangler's environment (its workerd inherits it): proves a recorded pid is still our wrangler. */
export const STACK_MARKER_ENV = "GATEPLANE_STACK_DIR";

export const stackMarker = (dir: string) => `${STACK_MARKER_ENV}=${path.resolve(dir)}`;

export interface StackLockFile {
  /** The `npm start` (or test) process that owns the directory. */
  pid: number;
  /** Its start time (`/proc/<pid>/stat` field 22), null where there is no /proc. */
  start_time: string | null;
  /** Its control plane. */
  url: string;
  /** Process group of its `wrangler dev`, while one runs. */
  wrangler_pid: number | null;
}

export interface StateDirLock {
  /** Records the wrangler the stack now runs (null: none). */
  recordWrangler(pid: number | null): Promise<void>;
  /** Gives the directory up (the file is removed). */
  release(): Promise<void>;
}

/** When `pid` started, in clock ticks since boot; null if it does not exist or there is no /proc. */
export async function processStartTime(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the process the lock names still runs (a reused pid has another start time). */
async function ownerRuns(lock: StackLockFile): Promise<boolean> {
  if (!isAlive(lock.pid)) return false;
  const started = await processStartTime(lock.pid);
  // Without /proc nothing can be verified: assume it is the owner rather than run two stacks.
  return started === null || lock.start_time === null || started === lock.start_time;
}

/** Pids of the processes in process group `pgid` (Linux; none elsewhere). */
async function groupMembers(pgid: number): Promise<number[]> {
  const entries = await readdir("/proc").catch(() => [] as string[]);
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // Field 5, the process group, is the third after the command name.
    if (stat && Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

/**
 * Whether the group wrangler led still holds a process of ours: wrangler itself, or (when wrangler
 * died first) its workerd, which keeps the group and the port.
 */
async function groupIsMarked(pgid: number, marker: string): Promise<boolean> {
  if (await isProcessMarked(pgid, marker)) return true;
  if (!isGroupAlive(pgid)) return false;
  for (const pid of await groupMembers(pgid)) if (await isProcessMarked(pid, marker)) return true;
  return false;
}

function parseLock(text: string): StackLockFile | null {
  try {
    const value = JSON.parse(text) as Partial<StackLockFile>;
    if (!Number.isSafeInteger(value.pid) || (value.pid as number) <= 0) return null;
    const wrangler = value.wrangler_pid;
    return {
      pid: value.pid as number,
      start_time: typeof value.start_time === "string" ? value.start_time : null,
      url: typeof value.url === "string" ? value.url : "?",
      wrangler_pid: Number.isSafeInteger(wrangler) && (wrangler as number) > 0 ? (wrangler as number) : null,
    };
  } catch {
    return null;
  }
}

function inUse(dir: string, lock: StackLockFile): StackError {
  return new StackError(
    "state dir",
    `${dir} is in use by a running stack (pid ${lock.pid}, control plane at ${lock.url}); ` +
      `stop it first (Ctrl-C in its terminal, or kill ${lock.pid}) or use another --dir`,
  );
}

/**
 * Takes `dir` for this process: refuses if its owner still runs, stops what a dead owner left
 * (its wrangler, if the recorded pid still carries our marker), then records this process.
 */
export async function claimStateDir(dir: string, url: string, log: (line: string) => void): Promise<StateDirLock> {
  const file = path.join(dir, "stack.json");
  let previous: StackLockFile | null = null;
  let exists = false;
  try {
    const text = await readFile(file, "utf8");
    exists = true;
    // Unreadable content (a crash between creating and writing it) names nobody: it is stale.
    previous = parseLock(text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new StackError("state dir", `${file} cannot be read: ${(error as Error).message}`);
    }
  }
  if (previous) {
    if (await ownerRuns(previous)) throw inUse(dir, previous);
    const wrangler = previous.wrangler_pid;
    if (wrangler !== null && (await groupIsMarked(wrangler, stackMarker(dir)))) {
      await stopProcessGroup(wrangler, 5_000);
      log(
        `stopped wrangler dev (pid ${wrangler}) left running by a stack that did not shut down (pid ${previous.pid})`,
      );
    }
  }
  if (exists) await rm(file, { force: true });

  const mine: StackLockFile = {
    pid: process.pid,
    start_time: await processStartTime(process.pid),
    url,
    wrangler_pid: null,
  };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // Exclusive create: of two stacks starting at once, one gets the directory.
    handle = await open(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      const other = parseLock(await readFile(file, "utf8").catch(() => ""));
      throw inUse(dir, other ?? { ...mine, pid: 0, url: "?" });
    }
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(mine, null, 2)}\n`);
  } finally {
    await handle.close();
  }
  let released = false;
  return {
    async recordWrangler(pid) {
      if (released) return;
      mine.wrangler_pid = pid;
      await writeFileAtomic(file, `${JSON.stringify(mine, null, 2)}\n`);
    },
    async release() {
      if (released) return;
      released = true;
      await rm(file, { force: true });
    },
  };
}
