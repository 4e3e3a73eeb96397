/**
 * @module
 * A fix, applied as the pool loads it, for a bug of @cloudflare/vitest-pool-workers ≤ 0.12.13
 * (cloudflare/workers-sdk#15092, fixed upstream by #15106): the wrapper classes of the Worker's
 * default entry point and of each Durable Object class wrap their prototype in one more Proxy on
 * every construction. One construction happens per `SELF.fetch` and per object started, so after
 * N of them every property read on an instance runs N nested `get` traps: the serial Workers
 * project ran later files 3-20 × slower than alone (a CPU profile of the runtime: 90 % of its time
 * in that trap), and the run was quadratic in its number of requests.
 *
 * The pool's module fallback service reads `cloudflare:test-internal` from disk in this process
 * (fs.readFileSync) when the runtime first imports it; this installs the proxy once per class, as
 * the upstream fix does, and changes nothing else. A pool whose source no longer has the faulty
 * lines (a fixed version) is served unchanged: then delete this file and its import.
 */
import fs from "node:fs";

const MODULE = "vitest-pool-workers/dist/worker/lib/cloudflare/test-internal.mjs";
const FAULTY = "  function Class(...args) {\n    Class.prototype = new Proxy(Class.prototype, {";
const FIXED =
  "  let proxied = false;\n  function Class(...args) {\n    if (!proxied && (proxied = true)) Class.prototype = new Proxy(Class.prototype, {";

const shared = globalThis as { gpPoolPrototypeFix?: boolean };
if (!shared.gpPoolPrototypeFix) {
  shared.gpPoolPrototypeFix = true;
  const readFileSync = fs.readFileSync;
  fs.readFileSync = function (this: unknown, ...args: Parameters<typeof readFileSync>) {
    const contents = readFileSync.apply(this, args);
    const file = args[0];
    if (typeof file !== "string" || !file.replaceAll("\\", "/").endsWith(MODULE) || typeof contents !== "string") {
      return contents;
    }
    return contents.replace(FAULTY, FIXED);
  } as typeof readFileSync;
}
