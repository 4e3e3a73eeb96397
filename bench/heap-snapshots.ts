/**
 * @module
 * Heap snapshots of a host's agent and standalone proxy at many services, to see what each keeps:
 * `node --expose-gc bench/compiled.mjs bench/heap-snapshots.ts [services] [--processes N]` (default
 * 10,000 services, 1 process) writes `agent.heapsnapshot` and the proxy's `Heap.*.heapsnapshot`
 * into `/tmp/gp-heap-<pid>/` after the whole document and 50 one-service deltas, as
 * `bench/config-delta.ts` applies them. Read them with `bench/heap-summary.ts`.
 */
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeHeapSnapshot } from "node:v8";
import { ConfigApplier } from "../agent/config-applier.ts";
import { ConfigStore } from "../agent/config-store.ts";
import { attachStandaloneProxy, stopStandaloneProxy } from "../agent/proxy-link.ts";
import { LEAN_HEAP_FLAGS } from "../proxy/process-fork.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import { fakeDocument, fakeService } from "../test/fakes/config-documents.ts";

const args = process.argv.slice(2);
const at = args.indexOf("--processes");
const processes = at === -1 ? 1 : Number(args.splice(at, 2)[1]);
const N = Number(args[0] ?? 10_000);
const dir = `/tmp/gp-heap-${process.pid}`;
await mkdir(dir, { recursive: true });
const PROXY_BIN = fileURLToPath(new URL("../bin/gateplane-proxy.mjs", import.meta.url));
const proxy = await attachStandaloneProxy(
  { httpPort: 0, processes, log: () => {} },
  {
    stateDir: dir,
    version: "heap",
    command: [
      process.execPath,
      ...LEAN_HEAP_FLAGS,
      "--heapsnapshot-signal=SIGUSR2",
      `--diagnostic-dir=${dir}`,
      PROXY_BIN,
    ],
    log: () => {},
  },
);
const store = new ConfigStore(dir);
const applier = new ConfigApplier({
  apply: (d) => proxy.apply(d),
  applyDelta: (delta) => proxy.applyDelta(delta),
  store,
  initial: null,
  log: { info: () => {}, warn: () => {}, error: console.error },
});
let version = await (async () => {
  const first = fakeDocument(N);
  const outcome = await applier.offer(first, "bench");
  if (outcome.kind !== "applied") throw new Error(`not applied: ${JSON.stringify(outcome)}`);
  return first.version;
})();
for (let i = 0; i < 50; i++) {
  const name = `s${String((i * 37) % N).padStart(5, "0")}`;
  const delta: ConfigDelta = {
    base_version: version,
    version: version + 1,
    services: [fakeService(name, { replicas: 3 })],
    removed: [],
  };
  const outcome = await applier.offerDelta(delta, "bench");
  if (outcome.kind !== "applied") throw new Error(`delta not applied: ${JSON.stringify(outcome)}`);
  version++;
}
await store.idle();
(globalThis as { gc?: () => void }).gc?.();
console.log(writeHeapSnapshot(path.join(dir, "agent.heapsnapshot")));
const proxyPid = Number((await readFile(path.join(dir, "proxy.pid"), "utf8")).trim());
process.kill(proxyPid, "SIGUSR2");
// The proxy writes its snapshot in the background: wait for the file, then for its size to settle.
let last = -1;
for (;;) {
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const file = (await readdir(dir)).find((f) => f.startsWith("Heap.") && f.endsWith(".heapsnapshot"));
  if (!file) continue;
  const size = (await stat(path.join(dir, file))).size;
  if (size > 0 && size === last) {
    console.log(path.join(dir, file));
    break;
  }
  last = size;
}
await proxy.close();
await stopStandaloneProxy(dir);
