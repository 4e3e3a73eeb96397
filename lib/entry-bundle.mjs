// An entry compiled to one plain module with esbuild (its packages included), and what it was
// built from written at its end so it is reused while its sources are unchanged: the bins' bundles
// (bin/compiled-entry.mjs) and the proxy's serving process (proxy/process-fork.ts). Plain
// JavaScript: the bins load it before any TypeScript can run.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Precedes the JSON of the inputs, `{ path: [size, mtimeMs] }`, paths from the package's root. */
const MARK = "\n//# gateplane-inputs=";

/** True when `bundle` exists and every input recorded at its end still has the size and mtime it had. */
export function bundleIsFresh(bundle, root) {
  try {
    const text = readFileSync(bundle, "utf8");
    const at = text.lastIndexOf(MARK);
    if (at < 0) return false;
    const inputs = JSON.parse(text.slice(at + MARK.length));
    for (const [file, [size, mtimeMs]] of Object.entries(inputs)) {
      const stat = statSync(path.join(root, file));
      if (stat.size !== size || stat.mtimeMs !== mtimeMs) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The text to write after a bundle's code: its inputs (esbuild's `metafile.inputs`, paths from
 * `root`) with their sizes and mtimes now. Called after the build: a source saved during the build
 * is then seen as changed next time.
 */
function inputsRecord(metafileInputs, root) {
  const inputs = {};
  for (const file of Object.keys(metafileInputs)) {
    const stat = statSync(path.join(root, file));
    inputs[file] = [stat.size, stat.mtimeMs];
  }
  return `${MARK}${JSON.stringify(inputs)}\n`;
}

/** esbuild's options for `source` (a path under `root`): one ESM module for this Node, with a metafile. */
export function entryBuildOptions(source, root) {
  return {
    absWorkingDir: root,
    entryPoints: [source],
    // Its packages too: one file for Node to read and compile instead of one per file of each
    // package (undici alone is dozens, each found through package.json lookups): an agent starts
    // on ~0.29 CPU-s instead of ~0.41. Their CommonJS code reaches Node's built-ins through the
    // `require` the banner makes (an ES module has none).
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    banner: {
      js: 'import { createRequire as __gpRequire } from "node:module"; const require = __gpRequire(import.meta.url);',
    },
    write: false,
    metafile: true,
    logLevel: "silent",
  };
}

/**
 * Writes a build's output to `bundle` followed by its inputs' record; aside, then renamed, so a
 * process starting meanwhile reads the old bundle or the new one, whole.
 */
export function writeBundle(bundle, result, root) {
  mkdirSync(path.dirname(bundle), { recursive: true });
  const temp = `${bundle}.${process.pid}.tmp`;
  writeFileSync(temp, `${result.outputFiles[0].text}${inputsRecord(result.metafile.inputs, root)}`);
  renameSync(temp, bundle);
}
