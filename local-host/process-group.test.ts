import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { until } from "../test/support/until.ts";
import { isGroupAlive, stopProcessGroup } from "./process-group.ts";

const state = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return "gone";
  }
};

describe("process groups", () => {
  it("a group whose members are all zombies (waiting for a slow reaper) has stopped", async () => {
    // sh leads the group; its two children are killed while sh is stopped, so nobody reaps them.
    const sh = spawn("sh", ["-c", "sleep 300 & a=$!; sleep 300 & echo $a $!; wait"], {
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const pids = await new Promise<number[]>((resolve) =>
      sh.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim().split(/\s+/).map(Number))),
    );
    const exited = new Promise((resolve) => sh.once("exit", resolve));
    try {
      expect(pids).toHaveLength(2);
      process.kill(sh.pid!, "SIGSTOP");
      for (const pid of pids) process.kill(pid, "SIGKILL");
      await until("zombies", () => pids.every((pid) => state(pid) === "Z" || state(pid) === "gone"));
      expect(isGroupAlive(sh.pid!)).toBe(true); // sh itself, stopped, is alive
      process.kill(sh.pid!, "SIGKILL");
      await exited;
      // The sleeps now belong to whoever reaps orphans here, however late it does.
      expect(isGroupAlive(sh.pid!)).toBe(false);
      expect(await stopProcessGroup(sh.pid!, 1_000)).not.toBe("killed");
    } finally {
      try {
        process.kill(-sh.pid!, "SIGKILL");
      } catch {}
    }
  });

  it("a group whose leader has exited is alive while another member runs", async () => {
    // sh leads the group and exits at once, leaving its sleep running in the group.
    const sh = spawn("sh", ["-c", "sleep 300 & echo $!"], { detached: true, stdio: ["ignore", "pipe", "ignore"] });
    // Listened for from the start: sh's exit may come before its output is read.
    const exited = new Promise((resolve) => sh.once("exit", resolve));
    const pid = await new Promise<number>((resolve) => sh.stdout!.once("data", (d: Buffer) => resolve(Number(d))));
    await exited;
    try {
      expect(state(sh.pid!)).toBe("gone");
      expect(isGroupAlive(sh.pid!)).toBe(true);
      expect(await stopProcessGroup(sh.pid!, 1_000)).toBe("terminated");
      expect(["Z", "gone"]).toContain(state(pid)); // killed; a zombie until its new parent reaps it
      expect(isGroupAlive(sh.pid!)).toBe(false);
    } finally {
      try {
        process.kill(-sh.pid!, "SIGKILL");
      } catch {}
    }
  });
});
