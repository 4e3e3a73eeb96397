/**
 * @module
 * `npm start`: the whole control plane on one machine. Secrets, the local host daemon, D1 migrations,
 * `wrangler dev`, the `main` project, and a CLI config, all under one directory (`.gateplane/`).
 *
 * @example
 * const stack = await startStack({ dir: ".gateplane", port: 8787 });
 * console.log(stack.url, stack.token);
 * await stack.stop();
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { CRON_INTERVAL_MS, startCronTimer, triggerScheduled, withoutCronNotice } from "./cron.ts";
import { type HostDaemon, startHostDaemon } from "./daemon.ts";
import type { AgentCommand } from "./default-agent-command.ts";
import { writeDevVars } from "./dev-vars.ts";
import { StackError } from "./errors.ts";
import { migrateLocalD1 } from "./migrations.ts";
import { freePort, isPortInUse } from "./ports.ts";
import { loadOrCreateSecrets } from "./secrets.ts";
import { claimStateDir, STACK_MARKER_ENV } from "./stack-lock.ts";
import { inspectorPortTaken, startWranglerDev, type WranglerDev, waitForHealthy } from "./wrangler.ts";

/** wrangler dev's default DevTools inspector port. */
const WRANGLER_INSPECTOR_PORT = 9229;

export interface StackOptions {
  /** Where everything lives: secrets, D1 and Durable Object state, hosts, the CLI config. */
  dir?: string;
  /** Port of the control plane (`wrangler dev`) on 127.0.0.1. */
  port?: number;
  /** Port of the local host daemon; 0 picks a free one. */
  daemonPort?: number;
  /** No progress lines, no wrangler or daemon output. */
  quiet?: boolean;
  /** How long `wrangler dev` may take to answer `/api/v1/health`. */
  readyTimeoutMs?: number;
  /** Where progress lines go (default: stdout). */
  log?: (line: string) => void;
  /** How often the Worker's scheduled handler runs (production's cron: every minute). */
  cronIntervalMs?: number;
  /**
   * Port of wrangler's inspector: 0 picks a free one (tests side by side); unset, wrangler's 9229,
   * or a free one when 9229 is taken (a second stack on the machine would otherwise fail to start).
   */
  inspectorPort?: number;
  /** How the hosts' agents are launched (default: this checkout's agent, `defaultAgentCommand`). */
  agentCommand?: AgentCommand;
}

export interface Stack {
  url: string;
  token: string;
  project: string;
  daemon: HostDaemon;
  dir: string;
  /** Stops only the control plane (hosts keep serving): an outage, for tests and drills. */
  stopControlPlane(): Promise<void>;
  /** Starts the control plane again on the same port and state. */
  startControlPlane(): Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_PROJECT = "main";

/** The checkout the stack runs: where wrangler.toml, migrations and node_modules are. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = path.resolve(options.dir ?? ".gateplane");
  const port = options.port ?? 8787;
  // Chosen once (a restarted control plane, startControlPlane, keeps it), unless it is lost to another
  // wrangler starting at the same moment: then the launch below takes another free one.
  let inspectorPort =
    options.inspectorPort === 0
      ? await freePort()
      : (options.inspectorPort ?? ((await isPortInUse(WRANGLER_INSPECTOR_PORT)) ? await freePort() : undefined));
  const inspectorChosen = options.inspectorPort !== undefined && options.inspectorPort !== 0;
  const write = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log = options.quiet ? () => {} : write;
  const url = `http://127.0.0.1:${port}`;

  await mkdir(dir, { recursive: true, mode: 0o700 });
  // First: a running stack on this directory is refused, and a killed one's wrangler stopped (it holds the port).
  const lock = await claimStateDir(dir, url, log);
  let daemon: HostDaemon;
  let secrets: Awaited<ReturnType<typeof loadOrCreateSecrets>>;
  try {
    // wrangler would otherwise fail later with a less obvious message (or pick another port silently).
    if (await isPortInUse(port)) {
      throw new StackError("port", `127.0.0.1:${port} is already in use; choose another with --port`);
    }
    secrets = await loadOrCreateSecrets(dir);
    // It stops the agents a killed stack left running (its state file names them) before relaunching them.
    daemon = await startHostDaemon({
      stateDir: path.join(dir, "hosts"),
      port: options.daemonPort ?? 0,
      token: secrets.LOCAL_HOST_DAEMON_TOKEN,
      log: (line) => log(`[hosts] ${line}`),
      agentCommand: options.agentCommand,
    });
  } catch (error) {
    await lock.release();
    throw error;
  }
  let wrangler: WranglerDev | null = null;
  let launch: () => Promise<void> = async () => {};
  // `wrangler dev` never fires wrangler.toml's cron: the stack does, while the control plane is up.
  const cron = startCronTimer(
    options.cronIntervalMs ?? CRON_INTERVAL_MS,
    async () => {
      if (wrangler) await triggerScheduled(url);
    },
    (error) => log(`[cron] scheduled handler failed: ${(error as Error).message}`),
  );
  const stop = async () => {
    await cron.stop();
    await wrangler?.stop();
    await daemon.stop();
    await lock.release();
  };

  try {
    const persistTo = path.join(dir, "wrangler");
    log("applying D1 migrations…");
    await migrateLocalD1(ROOT, persistTo);

    const envFile = path.join(dir, "dev.vars");
    await writeDevVars(envFile, {
      ...secrets,
      LOCAL_HOST_DAEMON_URL: daemon.url,
      PUBLIC_URL: url,
    });
    log(`starting the control plane (wrangler dev) on ${url}…`);
    launch = async () => {
      for (let attempt = 1; ; attempt++) {
        const started = startWranglerDev({
          root: ROOT,
          port,
          persistTo,
          envFile,
          onLine: withoutCronNotice((line) => log(`[wrangler] ${line}`)),
          env: { [STACK_MARKER_ENV]: dir },
          inspectorPort,
        });
        wrangler = started;
        await lock.recordWrangler(started.pid);
        try {
          await waitForHealthy(`${url}/api/v1/health`, started, options.readyTimeoutMs ?? 60_000);
          return;
        } catch (error) {
          const lost = inspectorPortTaken(started.output(), inspectorPort ?? WRANGLER_INSPECTOR_PORT);
          if (!lost || inspectorChosen || attempt === 3) throw error;
          log(
            `wrangler's inspector port ${inspectorPort ?? WRANGLER_INSPECTOR_PORT} was taken meanwhile; trying another`,
          );
          inspectorPort = await freePort();
        }
      }
    };
    await launch();

    await ensureProject(url, secrets.ADMIN_TOKEN, DEFAULT_PROJECT);
    await writeFileAtomic(
      path.join(dir, "config.json"),
      `${JSON.stringify({ url, token: secrets.ADMIN_TOKEN, project: DEFAULT_PROJECT }, null, 2)}\n`,
      0o600,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  let stopping: Promise<void> | null = null;
  return {
    url,
    token: secrets.ADMIN_TOKEN,
    project: DEFAULT_PROJECT,
    daemon,
    dir,
    async stopControlPlane() {
      await wrangler?.stop();
      wrangler = null;
      await lock.recordWrangler(null);
    },
    async startControlPlane() {
      if (!wrangler) await launch();
    },
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
}

/** Creates the project; one that already exists (a restart) is just as good. */
async function ensureProject(url: string, token: string, name: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(`${url}/api/v1/projects`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new StackError("project", `POST /api/v1/projects failed: ${(error as Error).message}`);
  }
  const body = await response.text();
  if (response.status === 201) return;
  if (response.status === 409 && /already_exists/.test(body)) return;
  throw new StackError("project", `POST /api/v1/projects answered ${response.status}`, body);
}
