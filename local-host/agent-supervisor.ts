/**
 * @module
 * Keeps one host's agent process running, like systemd's `Restart=always`: when the process exits on
 * its own it is started again after a back-off that doubles up to a cap and resets once a run lasted.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { stopProcessGroup } from "./process-group.ts";

export interface LaunchSpec {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
  /** A run at least this long counts as healthy: the next crash restarts after `initialMs` again. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoff = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 10_000 };

export interface SupervisorEvents {
  /** A process was started (first launch or restart). */
  spawned(pid: number): void;
  /** The process ended on its own (or could not start); it will be started again in `restartInMs`. */
  exited(reason: string, restartInMs: number): void;
}

export class AgentSupervisor {
  private readonly launch: () => LaunchSpec;
  private readonly logFile: string;
  private readonly backoff: RestartBackoff;
  private readonly events: SupervisorEvents;
  private pid: number | null = null;
  private stopped = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(launch: () => LaunchSpec, logFile: string, backoff: RestartBackoff, events: SupervisorEvents) {
    this.launch = launch;
    this.logFile = logFile;
    this.backoff = backoff;
    this.events = events;
  }

  /** Starts the process; spawn failures are reported through `exited` and retried like crashes. */
  start(): void {
    if (this.stopped) return;
    this.restartTimer = null;
    const startedAt = Date.now();
    let ended = false;
    const onEnd = (reason: string) => {
      if (ended) return;
      ended = true;
      this.pid = null;
      if (this.stopped) return;
      if (Date.now() - startedAt >= this.backoff.resetAfterMs) this.failures = 0;
      const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.failures);
      this.failures++;
      this.events.exited(reason, delay);
      this.restartTimer = setTimeout(() => this.start(), delay);
    };
    let logFd: number | null = null;
    try {
      mkdirSync(path.dirname(this.logFile), { recursive: true, mode: 0o700 });
      // Appended, not truncated: the runs before a crash loop are what explain it.
      logFd = openSync(this.logFile, "a", 0o600);
      const spec = this.launch();
      const child = spawn(spec.command, spec.args, {
        env: spec.env,
        cwd: spec.cwd,
        detached: true,
        stdio: ["ignore", logFd, logFd],
      });
      child.once("error", (error) => onEnd(`agent failed to start: ${error.message}`));
      child.once("exit", (code, signal) =>
        onEnd(signal ? `agent killed by ${signal}` : `agent exited with code ${code ?? "unknown"}`),
      );
      // The daemon must be able to exit while agents run (they are reaped by whoever is left).
      child.unref();
      if (child.pid !== undefined) {
        this.pid = child.pid;
        this.events.spawned(child.pid);
      }
    } catch (error) {
      // E.g. an unwritable state dir: retried like a crash, so a transient fault heals by itself.
      onEnd(`agent failed to start: ${(error as Error).message}`);
    } finally {
      if (logFd !== null) closeSync(logFd);
    }
  }

  /** Stops restarting and terminates the process group (SIGTERM, SIGKILL after `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const pid = this.pid;
    if (pid !== null) await stopProcessGroup(pid, graceMs);
  }
}
