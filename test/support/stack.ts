/**
 * Helpers shared by the end-to-end tests that run the `npm start` stack: the `gateplane` CLI (in
 * this process, or as the real bin), the local host daemon's view of hosts, and polling. They take
 * a `StackLike`: a file's own `Stack` (`startStack`) or its project in the shared stack
 * (`sharedStack`, `shared-stack.ts`).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { Io, Output } from "../../cli/io.ts";
import type { LocalInstance } from "../../schema/local-host.ts";

export { freePort } from "./ports.ts";
export { until } from "./until.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = path.join(ROOT, "bin/gateplane.mjs");

/**
 * What the helpers need of a stack. A `Stack` is one; so is a file's view of the shared stack, which
 * also carries the daemon's token (a `Stack`'s is in its `secrets.json`).
 */
export interface StackLike {
  url: string;
  /** The admin's API token. */
  token: string;
  /** The project the CLI config names and `projectApi` calls. */
  project: string;
  /** Holds `config.json`, the CLI config (`GATEPLANE_CONFIG`), and the test's own files. */
  dir: string;
  daemon: { url: string; token?: string };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `gateplane …` with the stack's CLI config, in this process: the `run()` that
 * bin/gateplane.mjs calls, with what a user's shell gives it (this checkout as the working
 * directory, the environment plus `GATEPLANE_CONFIG` and `NO_COLOR`, output to a pipe: no TTY, no
 * width; no input) and real time. Why not the bin: a `gateplane` process costs ~0.5 CPU-s under the
 * suite's load (Node's start and the bundle) and the end-to-end files run ~75 commands, ~35 of the
 * suite's ~400 CPU-s. What only the process adds (the bin, its bundle, its streams and exit code)
 * runs as users run it in {@link cliProcess}, which e2e.test.ts (the README's walkthrough and its
 * error lines) uses for every command.
 */
export function cli(stack: StackLike, ...args: string[]): Promise<CliResult> {
  return cliWith(stack, args);
}

/** {@link cli} with more environment (another user's token, a secret). */
export async function cliWith(
  stack: StackLike,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  // Loaded at the first command, not with this module: shared-stack-setup.ts imports it (for
  // `daemonToken`) in vitest's main process, which runs no CLI.
  const [{ processIo }, { run }] = await Promise.all([import("../../cli/io.ts"), import("../../cli/run.ts")]);
  const stdout = pipe();
  const stderr = pipe();
  const io: Io = {
    // The process's home, clock and sleeps; the rest as a shell running `gateplane` would give it.
    ...processIo(),
    stdin: Readable.from([]),
    stdout,
    stderr,
    env: { ...process.env, GATEPLANE_CONFIG: path.join(stack.dir, "config.json"), NO_COLOR: "1", ...env },
    cwd: ROOT,
    // No Ctrl-C comes: the handler is never called, as in a process nobody interrupts.
    onInterrupt: () => () => {},
  };
  const code = await run(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** An output as a process's stdout is when piped: not a TTY, no columns. */
function pipe(): Output & { text: string } {
  const out = {
    text: "",
    isTTY: false,
    write(chunk: string) {
      out.text += chunk;
      return true;
    },
  };
  return out;
}

/** Runs the real `gateplane` bin as a user would, with the stack's CLI config (see {@link cli}). */
export function cliProcess(stack: StackLike, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: { ...process.env, GATEPLANE_CONFIG: path.join(stack.dir, "config.json"), NO_COLOR: "1" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The hosts the stack's local host daemon knows. */
export async function hosts(stack: StackLike): Promise<LocalInstance[]> {
  const token = stack.daemon.token ?? (await daemonToken(stack.dir));
  const res = await fetch(`${stack.daemon.url}/v1/instances`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { instances: LocalInstance[] }).instances;
}

/** The daemon's token of the stack whose state is in `dir` (what `npm start` wrote to `secrets.json`). */
export async function daemonToken(dir: string): Promise<string> {
  const secrets = JSON.parse(await readFile(path.join(dir, "secrets.json"), "utf8")) as Record<string, string>;
  return secrets.LOCAL_HOST_DAEMON_TOKEN!;
}

/** Running: not gone, and not a zombie waiting for its reaper (a stopped process may be one briefly). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Calls the stack's API for its project as its admin; a non-2xx answer throws with its body. */
export async function projectApi<T>(stack: StackLike, method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.url}/api/v1/projects/${stack.project}${route}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
