// How the bins run TypeScript without a build step, and without paying for it on every start.
//
// tsx compiles on import, but its loader runs on a thread of its own: ~0.25 s of CPU and tens of MiB
// before the first line of ours runs (a CLI command took ~0.4 s, most of it that). So an entry is
// compiled once with esbuild into one plain module in `node_modules/.cache/gateplane/` (where the
// bundle's bare imports resolve from the package's node_modules), and compiled again whenever a
// source it was built from changed (size or mtime, each checked with one stat). Where the cache
// cannot be written (a read-only install) tsx compiles on import as before.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleIsFresh, entryBuildOptions, keepModuleUrls, writeBundle } from "../lib/entry-bundle.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEFAULT_CACHE = path.join(ROOT, "node_modules/.cache/gateplane");

/** Where `entry`'s bundle is kept (the options as for {@link importEntry}). */
export function bundleFile(entry, options = {}) {
  // Named for the checkout too: worktrees sharing one node_modules must not load each other's build.
  const checkout = createHash("sha256")
    .update(options.root ?? ROOT)
    .digest("hex")
    .slice(0, 8);
  return path.join(
    options.cacheDir ?? DEFAULT_CACHE,
    `${entry.replaceAll("/", "-").replace(/\.ts$/, "")}-${checkout}.mjs`,
  );
}

/**
 * Imports `entry` (a path from the package's root, e.g. "cli/main.ts") compiled, or under tsx when it
 * cannot be. `options.cacheDir` and `options.root` are for tests.
 */
export async function importEntry(entry, options = {}) {
  const root = options.root ?? ROOT;
  const source = path.join(root, entry);
  const bundle = bundleFile(entry, options);
  if (!bundleIsFresh(bundle, root)) {
    try {
      await build(source, bundle, root);
    } catch {
      const { register } = await import("tsx/esm/api");
      register();
      return import(pathToFileURL(source).href);
    }
  }
  return import(pathToFileURL(bundle).href);
}

async function build(source, bundle, root) {
  const esbuild = createRequire(import.meta.url)("esbuild");
  // esbuild's service is a child process that would otherwise stay for the life of the process
  // that built (an agent, a proxy: tens of MiB in its tree, and a child where none is expected).
  const result = await esbuild
    .build({ ...entryBuildOptions(source, root), plugins: [keepModuleUrls] })
    .finally(() => esbuild.stop());
  writeBundle(bundle, result, root);
}
