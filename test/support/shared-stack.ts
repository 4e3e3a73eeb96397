/**
 * A test file's share of the run's one `npm start` stack (started on demand by shared-stack-setup.ts,
 * the `node` project's global setup): its own project, created through the API as the admin, so files
 * running side by side never see each other's gateways, services, tokens or events; and its own
 * directory with a CLI config naming that project. Users are global in the control plane: a file
 * that creates one names it after its project (`scoped`).
 *
 * @example
 * let stack: SharedStack;
 * beforeAll(async () => { stack = await sharedStack("e2e"); }, 120_000);
 * afterAll(async () => { await stack?.release(); });
 * // cli(stack, …), hosts(stack), projectApi(stack, …) as with a `Stack`
 */
import { randomBytes } from "node:crypto";
import { watch } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { inject } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import { NAME_PATTERN } from "../../schema/gateway.ts";
import { SHARED_STACK_LAYOUT, type SharedStackReady } from "./shared-stack-setup.ts";
import type { StackLike } from "./stack.ts";

export interface SharedStack extends StackLike {
  daemon: { url: string; token: string };
  /** `name` made unique to this file (for what is global in the control plane: users). */
  scoped(name: string): string;
  /** The directory of the host `instanceId` (its agent's working directory). */
  hostDir(instanceId: string): string;
  /** Deletes the project's gateways (their services with them; their agents stop) and the directory. */
  release(): Promise<void>;
}

/**
 * Waits for the shared stack (at most `timeoutMs`; a failed start throws its error) and creates the
 * file's project, named `name` plus a random suffix — or, with `project`, uses that one as it is
 * (`main`, which `npm start` creates: for the one file that runs the README's commands verbatim).
 */
export async function sharedStack(
  name: string,
  { timeoutMs = 90_000, project: existing }: { timeoutMs?: number; project?: string } = {},
): Promise<SharedStack> {
  const root = inject("sharedStackDir");
  if (!root) {
    throw new Error("no shared stack: sharedStack() works in the node project's files (vitest.config.ts)");
  }
  // Asks the global setup to start the stack (the first file's request starts it; later ones are no-ops).
  await writeFile(path.join(root, SHARED_STACK_LAYOUT.start), "");
  const ready = await waitForReady(root, timeoutMs);
  const project = existing ?? `${name}-${randomBytes(3).toString("hex")}`;
  if (!NAME_PATTERN.test(project)) throw new Error(`sharedStack(${name}): ${project} is not a valid project name`);
  if (!existing) {
    const res = await fetch(`${ready.url}/api/v1/projects`, {
      method: "POST",
      headers: { authorization: `Bearer ${ready.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: project }),
    });
    // 409 too: a project of that name belongs to another file.
    if (res.status !== 201) throw new Error(`creating project ${project}: ${res.status} ${await res.text()}`);
  }

  const dir = path.join(root, SHARED_STACK_LAYOUT.files, project);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // What `npm start` writes to its config.json, for this project.
  await writeFile(
    path.join(dir, "config.json"),
    `${JSON.stringify({ url: ready.url, token: ready.token, project }, null, 2)}\n`,
    { mode: 0o600 },
  );

  const api = (method: string, route: string, body?: unknown) =>
    fetch(`${ready.url}/api/v1/projects/${project}${route}`, {
      method,
      headers: { authorization: `Bearer ${ready.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    url: ready.url,
    token: ready.token,
    project,
    dir,
    daemon: { url: ready.daemonUrl, token: ready.daemonToken },
    scoped: (base) => `${base}-${project}`,
    hostDir: (instanceId) => path.join(ready.hostsDir, instanceId),
    async release() {
      const listed = await api("GET", "/gateways");
      if (!listed.ok) throw new Error(`GET /gateways: ${listed.status} ${await listed.text()}`);
      const names = ((await listed.json()) as { gateways: Gateway[] }).gateways
        .filter((g) => !g.to_be_deleted)
        .map((g) => g.name);
      // The deletion goes on in the stack; the global teardown stops whatever is left.
      if (names.length > 0) {
        const deleted = await api("POST", "/gateways/delete", { names, cascade: true });
        if (!deleted.ok) throw new Error(`deleting ${names.join(", ")}: ${deleted.status} ${await deleted.text()}`);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with ready.json once it appears; rejects with failed.json's error, or after `timeoutMs`. */
function waitForReady(root: string, timeoutMs: number): Promise<SharedStackReady> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error: Error | null, ready?: SharedStackReady) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watcher.close();
      if (error) reject(error);
      else resolve(ready!);
    };
    const check = async () => {
      const failed = await readFile(path.join(root, SHARED_STACK_LAYOUT.failed), "utf8").catch(() => null);
      if (failed !== null) {
        const { message } = JSON.parse(failed) as { message: string };
        return finish(new Error(`the shared stack failed to start: ${message}`));
      }
      const ready = await readFile(path.join(root, SHARED_STACK_LAYOUT.ready), "utf8").catch(() => null);
      if (ready !== null) finish(null, JSON.parse(ready) as SharedStackReady);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `the shared stack was not ready after ${timeoutMs / 1000} s (no ${SHARED_STACK_LAYOUT.ready} in ${root})`,
          ),
        ),
      timeoutMs,
    );
    // Both files are written by rename (writeFileAtomic): one event each, and never half a file.
    const watcher = watch(root, (_event, file) => {
      if (file === SHARED_STACK_LAYOUT.ready || file === SHARED_STACK_LAYOUT.failed) check().catch(finish);
    });
    watcher.on("error", finish);
    // Written before the watcher started.
    check().catch(finish);
  });
}
