/**
 * @module
 * Running the control plane locally with this checkout's wrangler: D1 migrations, then `wrangler dev`
 * as a child process group that the stack can wait on and stop.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StackError } from "./errors.ts";
import { stopProcessGroup } from "./process-group.ts";

/** Kept from wrangler's output so a failure can show what it said. */
const OUTPUT_LIMIT = 64 * 1024;

/** Names the stack passes through the env file; kept out of wrangler's environment so it cannot shadow them. */
const SHADOWING_ENV = [
  "ADMIN_TOKEN",
  "CREDENTIALS_KEY",
  "AGENT_SIGNING_KEY",
  "LOCAL_HOST_DAEMON_TOKEN",
  "LOCAL_HOST_DAEMON_URL",
  "PUBLIC_URL",
];

function wranglerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    // Local dev works offline: no metrics, and the placeholder `Request.cf` instead of fetching it.
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    ...process.env,
    CI: "1",
    WRANGLER_SEND_METRICS: "false",
  };
  for (const name of SHADOWING_ENV) delete env[name];
  return env;
}

const wranglerBin = (root: string) => path.join(root, "node_modules", ".bin", "wrangler");

class OutputTail {
  private text = "";
  append(chunk: string): void {
    this.text = (this.text + chunk).slice(-OUTPUT_LIMIT);
  }
  toString(): string {
    return this.text;
  }
}

function collect(child: ChildProcess, tail: OutputTail, onLine?: (line: string) => void): void {
  let partial = "";
  const onData = (data: Buffer) => {
    const chunk = data.toString("utf8");
    tail.append(chunk);
    if (!onLine) return;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) onLine(line);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
}

/** `wrangler d1 migrations apply DB --local`: the local D1 gets every migration not yet applied. */
export async function applyMigrations(root: string, persistTo: string): Promise<void> {
  const child = spawn(
    wranglerBin(root),
    [
      "d1",
      "migrations",
      "apply",
      "DB",
      "--local",
      "--persist-to",
      persistTo,
      "--config",
      path.join(root, "wrangler.toml"),
    ],
    { cwd: root, env: wranglerEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  const tail = new OutputTail();
  collect(child, tail);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (exitCode) => resolve(exitCode));
  }).catch((error: Error) => {
    throw new StackError("migrations", `cannot run ${wranglerBin(root)}: ${error.message}`);
  });
  if (code !== 0) throw new StackError("migrations", `wrangler exited with code ${code}`, tail.toString());
}

export interface WranglerDevOptions {
  root: string;
  port: number;
  persistTo: string;
  envFile: string;
  /** Each line wrangler prints (it runs with `--log-level warn`, so these are worth seeing). */
  onLine?: (line: string) => void;
  /** Added to wrangler's environment (the stack's marker, `stack-lock.ts`). */
  env?: Record<string, string>;
  /** Port of wrangler's DevTools inspector; unset, wrangler's default (9229), which a second
   * `wrangler dev` on the machine cannot also take: tests running side by side each pass a free one. */
  inspectorPort?: number;
}

export interface WranglerDev {
  pid: number;
  /** What wrangler printed recently, for error messages. */
  output(): string;
  /** Resolves with a description of how wrangler ended. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

export function startWranglerDev(options: WranglerDevOptions): WranglerDev {
  const child = spawn(
    wranglerBin(options.root),
    [
      "dev",
      "--config",
      path.join(options.root, "wrangler.toml"),
      "--ip",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--persist-to",
      options.persistTo,
      "--env-file",
      options.envFile,
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
      ...(options.inspectorPort === undefined ? [] : ["--inspector-port", String(options.inspectorPort)]),
    ],
    // Its own process group: wrangler runs workerd and esbuild, which must go down with it.
    {
      cwd: options.root,
      env: { ...wranglerEnv(), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  const tail = new OutputTail();
  collect(child, tail, options.onLine);
  const exited = new Promise<string>((resolve) => {
    child.once("error", (error) => resolve(`wrangler failed to start: ${error.message}`));
    child.once("exit", (code, signal) =>
      resolve(signal ? `wrangler killed by ${signal}` : `wrangler exited with code ${code}`),
    );
  });
  let stopped: Promise<void> | null = null;
  return {
    pid: child.pid ?? -1,
    output: () => tail.toString(),
    exited,
    stop() {
      stopped ??= child.pid === undefined ? Promise.resolve() : stopProcessGroup(child.pid, 5_000).then(() => {});
      return stopped;
    },
  };
}

/**
 * Whether wrangler ended because its DevTools inspector's port was taken: what it prints then
 * ("Address already in use (127.0.0.1:9229)"). A stack that chose the port as free can still lose
 * it to another `wrangler dev` starting at the same moment (two stacks, or two test suites, at once).
 */
export function inspectorPortTaken(output: string, port: number): boolean {
  return output.includes(`Address already in use (127.0.0.1:${port})`);
}

/** Polls `url` until it answers 200; fails early if wrangler exits, or after `timeoutMs`. */
export async function waitForHealthy(url: string, wrangler: WranglerDev, timeoutMs: number): Promise<void> {
  let exitReason: string | null = null;
  void wrangler.exited.then((reason) => {
    exitReason = reason;
  });
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (exitReason !== null) throw new StackError("wrangler dev", exitReason, wrangler.output());
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `${url} answered ${response.status}`;
    } catch (error) {
      last = `${url}: ${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`;
    }
    await sleep(300);
  }
  throw new StackError("wrangler dev", `not healthy after ${timeoutMs / 1000} s (${last})`, wrangler.output());
}
