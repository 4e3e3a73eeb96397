/**
 * @module
 * How a proxy serving process is started: its entry (`process-main.ts`) compiled once to plain
 * JavaScript at run time, then forked either plainly or through node:cluster (`process-pool.ts`
 * says why both); or, when the pool has one process, served in the parent's own process behind the
 * same `Child` face (`in-process-child.ts`, docs/gateway-host.md#one-process), unless the host asks
 * for a child to keep a crash of the serving code from taking the parent with it.
 */
import { fork } from "node:child_process";
import cluster from "node:cluster";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleIsFresh, entryBuildOptions, writeBundle } from "../lib/entry-bundle.mjs";
import type { Child } from "./child-face.ts";
import { ProxyProcessError } from "./errors.ts";
import { startInProcess } from "./in-process-child.ts";

export type { Child, ChildProcessFace } from "./child-face.ts";

export type Sharing = "cluster" | "handle";

/**
 * V8 flags of the proxy's processes (its serving children, and the standalone proxy the agent
 * starts), before any the operator gives (the last of a flag wins). A host holds one routing table
 * per process, and each configuration change leaves the previous table's maps as garbage: with V8's
 * defaults a process lets its heap grow to several times what is live before collecting it (a
 * serving process read ~280 MiB after 200 deltas at 10,000 services for ~80 MiB live), and keeps a
 * 16 MiB young generation per semi-space. A major collection once the heap grew 50% over what was
 * live, and 4 MiB semi-spaces, keep each process near its live size, for more collection work per
 * change (smaller semi-spaces saved little more and cost more: docs/gateway-host.md#figures).
 */
export const LEAN_HEAP_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--heap-growing-percent=50"];

const ENTRY_SOURCE = fileURLToPath(new URL("./process-main.ts", import.meta.url));
/**
 * Inside the package, so the bundle's bare imports (undici, valibot) resolve from its node_modules;
 * named for the checkout, so worktrees sharing one node_modules never fork each other's build.
 */
export const ENTRY_BUNDLE = fileURLToPath(
  new URL(
    `../node_modules/.cache/gateplane/proxy-process-main-${createHash("sha256").update(ENTRY_SOURCE).digest("hex").slice(0, 8)}.mjs`,
    import.meta.url,
  ),
);

/**
 * The child's entry: this checkout's `process-main.ts` compiled once to plain JavaScript, so each
 * child runs without the TypeScript loader (whose compiler thread costs tens of MiB per process).
 * The bundle records the size and mtime of every source it was built from (`lib/entry-bundle.mjs`,
 * as the bins' bundles do) and is reused while they are unchanged: a proxy that starts (an agent's
 * upgrade, a restart) forks at once instead of spending ~0.3 CPU-s on esbuild first. Falls back to
 * the loader where the bundle cannot be written (a read-only install).
 */
let entry: { file: string; execArgv: string[] } | null = null;
function processEntry(nodeFlags: readonly string[]): { file: string; execArgv: string[] } {
  entry ??= (() => {
    try {
      if (!bundleIsFresh(ENTRY_BUNDLE, PACKAGE_ROOT)) buildBundle(ENTRY_SOURCE, ENTRY_BUNDLE, PACKAGE_ROOT);
      return { file: ENTRY_BUNDLE, execArgv: [] };
    } catch {
      // An absolute URL: `--import tsx` would be resolved from the working directory.
      const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
      return { file: ENTRY_SOURCE, execArgv: ["--import", tsx] };
    }
  })();
  return { file: entry.file, execArgv: [...LEAN_HEAP_FLAGS, ...nodeFlags, ...entry.execArgv] };
}

const PACKAGE_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Bundles `source` (its packages left as imports) into `bundle`, followed by its inputs' sizes and mtimes. */
export function buildBundle(source: string, bundle: string, root: string): void {
  const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  writeBundle(bundle, esbuild.buildSync(entryBuildOptions(source, root)), root);
}

/** How the pool's processes are started (the fields of its options this module reads). */
export interface ChildSpec {
  sharing: Sharing;
  nodeFlags?: readonly string[];
  /** How many processes the pool runs. */
  count: number;
  /** With one process, serve from a child anyway (crash isolation) instead of in the parent's process. */
  servingChild?: boolean;
}

/** A serving process for the pool: in this process when it has one (and no child is asked for), else forked. */
export function startChild(spec: ChildSpec): Child {
  if (spec.count === 1 && spec.servingChild !== true) return startInProcess();
  return forkChild(spec.sharing, spec.nodeFlags ?? []);
}

export function forkChild(sharing: Sharing, nodeFlags: readonly string[]): Child {
  if (sharing === "cluster") {
    const { file, execArgv } = processEntry(nodeFlags);
    if (cluster.settings.exec !== file) {
      // Respect an operator's explicit choice; otherwise let the kernel spread connections.
      if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
      cluster.setupPrimary({ exec: file, execArgv, silent: false });
    }
    const clustered = cluster.fork();
    // biome-ignore lint/suspicious/noExplicitAny: Node's send accepts listening handles; its typing does not say so.
    return { process: clustered.process, send: (message, handle) => clustered.send(message, handle as any) };
  }
  const { file, execArgv } = processEntry(nodeFlags);
  const child = fork(file, [], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  return { process: child, send: (message, handle) => child.send(message, handle as any) };
}

/** A port free on `host` now (cluster mode shares one socket between every child asking for port 0). */
export async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen({ host, port: 0 }, resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== "object" || !address) throw new ProxyProcessError(`cannot find a free port on ${host}`);
  return address.port;
}
