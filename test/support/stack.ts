/**
 * Helpers shared by the end-to-end tests that run the `npm start` stack: the real `gateplane`
 * bin, the local host daemon's view of hosts, and polling. They take a `StackLike`: a file's own
 * `Stack` (`startStack`) or its project in the shared stack (`sharedStack`, `shared-stack.ts`).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
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

/** Runs `gateplane` as a user would, with the stack's CLI config. */
export function cli(stack: StackLike, ...args: string[]): Promise<CliResult> {
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
