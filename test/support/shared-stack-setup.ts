/**
 * Global setup of the `e2e` project (vitest.config.ts): ONE `npm start` stack for the end-to-end
 * files that neither stop nor restart it, instead of one per file (each start costs ~6 s and ~8 CPU-s
 * of `wrangler dev`). vitest runs it in its main process, and only when the run has files of that
 * project, so a unit test run starts no stack.
 *
 * The stack starts in the background: setup returns at once (the other files run meanwhile) and
 * provides the directory where the outcome appears, `ready.json` (`SharedStackReady`) or
 * `failed.json` (`{ message }`); `sharedStack()` (shared-stack.ts) waits for one of them and gives
 * its file a project of its own. The teardown awaits the start, stops the stack (wrangler, workerd,
 * the host daemon and every agent it started) and removes the directory.
 */
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
export const SHARED_STACK_LAYOUT = { ready: "ready.json", failed: "failed.json", stack: "stack", files: "files" };

declare module "vitest" {
  export interface ProvidedContext {
    /** The shared stack's directory (see this module); set only in the `e2e` project. */
    sharedStackDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(tmpdir(), "gp-shared-stack-"));
  await mkdir(path.join(root, SHARED_STACK_LAYOUT.files));
  project.provide("sharedStackDir", root);

  let stack: Stack | null = null;
  const started = (async () => {
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
  })();

  return async () => {
    // The start may still be under way (every file of the project failed early): wait, then stop it.
    await started.catch(() => {});
    await stack?.stop();
    await rm(root, { recursive: true, force: true });
  };
}
