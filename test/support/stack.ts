/**
 * Helpers shared by the end-to-end tests that run the `npm start` stack: the real `gateplane`
 * bin, the local host daemon's view of hosts, and polling.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Stack } from "../../local-host/stack.ts";
import type { LocalInstance } from "../../schema/local-host.ts";

export { freePort } from "../../local-host/ports.ts";
export { until } from "./until.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = path.join(ROOT, "bin/gateplane.mjs");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `gateplane` as a user would, with the stack's CLI config. */
export function cli(stack: Stack, ...args: string[]): Promise<CliResult> {
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
export async function hosts(stack: Stack): Promise<LocalInstance[]> {
  const secrets = JSON.parse(await readFile(path.join(stack.dir, "secrets.json"), "utf8")) as Record<string, string>;
  const res = await fetch(`${stack.daemon.url}/v1/instances`, {
    headers: { authorization: `Bearer ${secrets.LOCAL_HOST_DAEMON_TOKEN}` },
  });
  return ((await res.json()) as { instances: LocalInstance[] }).instances;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Calls the stack's API for project `main` as its admin; a non-2xx answer throws with its body. */
export async function projectApi<T>(stack: Stack, method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.url}/api/v1/projects/main${route}`, {
    method,
    headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
