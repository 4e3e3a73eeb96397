/**
 * @module
 * Stopping a host's process group the way an init system does: SIGTERM, a grace period, SIGKILL.
 * Agents are spawned `detached` so each leads its own group, and the whole group (the agent and
 * anything it started, e.g. a router) goes down together.
 */
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_MS = 25;

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/**
 * Whether any process of the group led by `pgid` is still alive. A zombie answers signals until its
 * parent reaps it, and an orphan's new parent (init, or a container's PID 1) may take seconds to:
 * on Linux a group whose every member is a zombie has stopped, and counts as gone.
 */
export function isGroupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0) && !onlyZombies(pgid);
}

/** The state letter and process group of `pid` from /proc (null when it is gone or /proc cannot tell). */
function procStat(pid: string | number): { state: string; pgrp: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null; // gone, or no /proc
  }
  // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
}

/** True when /proc shows members of the group and all of them are zombies (false where it cannot tell). */
function onlyZombies(pgid: number): boolean {
  // The leader first: while it runs, the group is alive, and a stop's wait (a poll every 25 ms)
  // spends no scan of every process on the machine (with hundreds of processes, the scans of a test
  // run's hosts stopping cost ~5 s of CPU). Only a group whose leader is gone or a zombie is scanned.
  const leader = procStat(pgid);
  if (leader && leader.pgrp === pgid && leader.state !== "Z") return false;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return false;
  }
  let members = 0;
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const stat = procStat(entry);
    if (!stat || stat.pgrp !== pgid) continue; // exited meanwhile, or another group's
    members++;
    if (stat.state !== "Z") return false;
  }
  return members > 0;
}

async function waitForGroupExit(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isGroupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/**
 * SIGTERM the group, SIGKILL it if anything is left after `graceMs`.
 * Resolves once the group is gone; returns how it ended.
 */
export async function stopProcessGroup(pgid: number, graceMs: number): Promise<"terminated" | "killed" | "gone"> {
  if (!signalGroup(pgid, "SIGTERM")) return "gone";
  if (await waitForGroupExit(pgid, graceMs)) return "terminated";
  signalGroup(pgid, "SIGKILL");
  await waitForGroupExit(pgid, 2_000);
  return "killed";
}

/**
 * Whether `pid` is a process we started for the given marker (an env var `name=value`). A daemon
 * that crashed leaves its agents running; after a restart their pids may as well belong to
 * unrelated processes, which must not be killed. Linux only; elsewhere we never claim a process.
 */
export async function isProcessMarked(pid: number, marker: string): Promise<boolean> {
  try {
    const environ = await readFile(`/proc/${pid}/environ`, "latin1");
    return environ.split("\0").includes(marker);
  } catch {
    return false;
  }
}
