/**
 * @module
 * Process accounting from /proc (Linux): a process tree's resident memory and CPU time, sampled
 * while a load runs so the table can show the peak memory of all of a proxy's processes together.
 */
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS = 100;

function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces; fields resume after its closing parenthesis.
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = Number(statFields(Number(entry))?.[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = parents.get(ppid) ?? [];
    list.push(Number(entry));
    parents.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const child of parents.get(p) ?? []) walk(child);
  };
  walk(pid);
  return out;
}

/** Resident set size in bytes (0 for a process that is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** User and system CPU seconds a process has used. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const f = statFields(pid);
  if (!f) return { user: 0, system: 0 };
  return { user: Number(f[11]) / CLOCK_TICKS, system: Number(f[12]) / CLOCK_TICKS };
}

export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** Samples the summed RSS of `pids()` every `intervalMs` until stopped; returns the peak. */
export function sampleRss(pids: () => number[], intervalMs = 200): { stop(): number } {
  let peak = 0;
  const sample = () => {
    peak = Math.max(
      peak,
      pids().reduce((sum, pid) => sum + rssBytes(pid), 0),
    );
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** A process's command name (`/proc/<pid>/comm`; "" for a process that is gone). */
export function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}
