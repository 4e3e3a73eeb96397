/**
 * @module
 * Two changes to @cloudflare/vitest-pool-workers' runtime modules, applied as the pool loads them.
 * The pool's module fallback service reads its `cloudflare:test-*` modules from disk in this process
 * (fs.readFileSync) when the runtime first imports them; each patch replaces a few exact lines, and
 * a pool whose source no longer has them is served unchanged (test/node/pool-patches.test.ts checks
 * that both still find their lines, so an upgrade that makes one moot says so).
 *
 * 1. A bug of the pool ≤ 0.12.13 (cloudflare/workers-sdk#15092, fixed upstream by #15106 in versions
 *    that need Node 22): the wrapper classes of the Worker's default entry point and of each Durable
 *    Object class wrap their prototype in one more Proxy on every construction. One construction
 *    happens per `SELF.fetch` and per object started, so after N of them every property read on an
 *    instance runs N nested `get` traps: the serial Workers project ran later files 3-20 × slower
 *    than alone, and the run was quadratic in its number of requests. Patched as upstream fixed it:
 *    the proxy is installed once per class.
 *
 * 2. After each test file, the pool's runner calls `vi.resetModules()`, so the next file imports
 *    the Worker, the objects and every dependency again through the pool's module RPC: ~0.9 s per
 *    file here, whatever the file holds (30 files: ~27 s of the project's ~70 s alone). The
 *    project's files keep no module state another could see (as in the node project, which runs
 *    with `isolate: false` for the same reason): fetchMock is reset before each file by the pool,
 *    fake timers are restored after each test, nothing mocks a module. So the modules are kept.
 */
import fs from "node:fs";

interface Patch {
  /** The end of the runtime module's path. */
  module: string;
  faulty: string;
  fixed: string;
}

export const PATCHES: Patch[] = [
  {
    module: "vitest-pool-workers/dist/worker/lib/cloudflare/test-internal.mjs",
    faulty: "  function Class(...args) {\n    Class.prototype = new Proxy(Class.prototype, {",
    fixed:
      "  let proxied = false;\n  function Class(...args) {\n    if (!proxied && (proxied = true)) Class.prototype = new Proxy(Class.prototype, {",
  },
  {
    module: "vitest-pool-workers/dist/worker/lib/cloudflare/test-runner.mjs",
    faulty: "    vi.resetModules();\n    await waitForGlobalWaitUntil();",
    fixed: "    await waitForGlobalWaitUntil();",
  },
];

/** `contents` of the runtime module at `file` with its patch applied (unchanged for other files). */
export function patched(file: string, contents: string): string {
  const name = file.replaceAll("\\", "/");
  const patch = PATCHES.find((p) => name.endsWith(p.module));
  return patch ? contents.replace(patch.faulty, patch.fixed) : contents;
}

/** Serves the runtime modules patched from now on in this process (the config's, before the pool starts). */
export function installPoolPatches(): void {
  const shared = globalThis as { gpPoolPatches?: boolean };
  if (shared.gpPoolPatches) return;
  shared.gpPoolPatches = true;
  const readFileSync = fs.readFileSync;
  fs.readFileSync = function (this: unknown, ...args: Parameters<typeof readFileSync>) {
    const contents = readFileSync.apply(this, args);
    const file = args[0];
    return typeof file === "string" && typeof contents === "string" ? patched(file, contents) : contents;
  } as typeof readFileSync;
}
