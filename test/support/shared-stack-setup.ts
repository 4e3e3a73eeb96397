/**
 * Global setup of the `node` project (vitest.config.ts): ONE `npm start` stack for the end-to-end
 * files that neither stop nor restart it, instead of one per file (each start costs ~6 s and ~8 CPU-s
 * of `wrangler dev`). vitest runs it in its main process.
 *
 * The stack starts on demand: setup only provides a directory and watches it. The first file that
 * calls `sharedStack()` (shared-stack.ts) writes `start` there; the stack then starts in the
 * background and its outcome appears as `ready.json` (`SharedStackReady`) or `failed.json`
 * (`{ message }`), which `sharedStack()` waits for before giving its file a project of its own. So a
 * run without such a file starts no stack, and the files that use it run in the same pool as every
 * other node file (a project of their own would run after all of them: vitest runs one project's
 * forks at a time when isolation is off). The teardown awaits a start under way, stops the stack
 * (wrangler, workerd, the host daemon and every agent it started) and removes the directory.
 */
import { existsSync, watch } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { writeFileAtomic } from "../../lib/atomic-file.ts";
import { defaultAgentCommand } from "../../local-host/default-agent-command.ts";
import { type Stack, startStack } from "../../local-host/stack.ts";
import { writeFakeRouterVenv } from "./fake-router-venv.ts";
import { daemonToken, freePort } from "./stack.ts";

/** What `ready.json` holds. */
export interface SharedStackReady {
  url: string;
  /** The admin's API token (a global admin: it may create projects and users). */
  token: string;
  daemonUrl: string;
  daemonToken: string;
  /** Where the daemon keeps each host's directory: `<hostsDir>/<instance id>`. */
  hostsDir: string;
}

/** What the shared stack's directory holds: the outcome of the start, the stack's state, a directory per file. */
export const SHARED_STACK_LAYOUT = {
  start: "start",
  ready: "ready.json",
  failed: "failed.json",
  stack: "stack",
  files: "files",
};

declare module "vitest" {
  export interface ProvidedContext {
    /** The shared stack's directory (see this module); set in the `node` project. */
    sharedStackDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(tmpdir(), "gp-shared-stack-"));
  await mkdir(path.join(root, SHARED_STACK_LAYOUT.files));
  project.provide("sharedStackDir", root);

  let stack: Stack | null = null;
  let started: Promise<void> | null = null;
  const start = () =>
    (started ??= (async () => {
      try {
        // The hosts that opt in get the fake SGLang router as if installed (fake-router-venv.ts).
        const venv = await writeFakeRouterVenv(root);
        stack = await startStack({
          dir: path.join(root, SHARED_STACK_LAYOUT.stack),
          port: await freePort(),
          quiet: true,
          inspectorPort: 0,
          agentCommand: (instance, paths) => {
            const spec = defaultAgentCommand(instance, paths);
            return { ...spec, env: { ...spec.env, GATEPLANE_SGLANG_ROUTER_VENV: venv } };
          },
        });
        const ready: SharedStackReady = {
          url: stack.url,
          token: stack.token,
          daemonUrl: stack.daemon.url,
          daemonToken: await daemonToken(stack.dir),
          hostsDir: path.join(stack.dir, "hosts", "instances"),
        };
        await writeFileAtomic(path.join(root, SHARED_STACK_LAYOUT.ready), JSON.stringify(ready));
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        await writeFileAtomic(path.join(root, SHARED_STACK_LAYOUT.failed), JSON.stringify({ message }));
      }
    })());

  // `start` is written by rename or created whole: one event; and maybe before the watcher started.
  const watcher = watch(root, (_event, file) => {
    if (file === SHARED_STACK_LAYOUT.start) void start();
  });
  if (existsSync(path.join(root, SHARED_STACK_LAYOUT.start))) void start();

  return async () => {
    watcher.close();
    // The start may still be under way (every file that asked for it failed early): wait, then stop it.
    await started?.catch(() => {});
    await stack?.stop();
    await rm(root, { recursive: true, force: true });
  };
}
