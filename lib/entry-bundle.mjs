// An entry compiled to one plain module with esbuild (its packages included), and what it was
// built from written at its end so it is reused while its sources are unchanged: the bins' bundles
// (bin/compiled-entry.mjs) and the proxy's serving process (proxy/process-fork.ts). Plain
// JavaScript: the bins load it before any TypeScript can run.
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const THIS_FILE = fileURLToPath(import.meta.url);

/** Precedes the JSON of the inputs, `{ path: [size, mtimeMs] }`, paths from the package's root. */
export const MARK = "\n//# gateplane-inputs=";

/** True when `bundle` exists and every input recorded at its end still has the size and mtime it had. */
export function bundleIsFresh(bundle, root) {
  try {
    const inputs = JSON.parse(readRecord(bundle));
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
 * The inputs' record at the end of `bundle`, read from its tail: a bundle is megabytes (the agent's
 * ~1.8 MB) that every start would otherwise read and decode once here and again to run it.
 */
function readRecord(bundle) {
  const fd = openSync(bundle, "r");
  try {
    const size = fstatSync(fd).size;
    for (let length = Math.min(size, 64 * 1024); ; length = Math.min(size, length * 4)) {
      const tail = Buffer.alloc(length);
      readSync(fd, tail, 0, length, size - length);
      const text = tail.toString("utf8");
      const at = text.lastIndexOf(MARK);
      if (at >= 0) return text.slice(at + MARK.length);
      if (length === size) throw new Error(`${bundle} has no inputs record`);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The text to write after a bundle's code: its inputs (esbuild's `metafile.inputs`, paths from
 * `root`) with their sizes and mtimes now, and this module's own: how bundles are built is an input
 * too (a bundle built with other options is built again). Called after the build: a source saved
 * during the build is then seen as changed next time.
 */
function inputsRecord(metafileInputs, root) {
  const inputs = {};
  for (const file of [...Object.keys(metafileInputs), path.relative(root, THIS_FILE)]) {
    const stat = statSync(path.join(root, file));
    inputs[file] = [stat.size, stat.mtimeMs];
  }
  return `${MARK}${JSON.stringify(inputs)}\n`;
}

/** esbuild leaves `import.meta.url` alone, so each module gets its source's URL back: its paths
 * (`../package.json`, a child's entry) stay what they are under tsx. */
export const keepModuleUrls = {
  name: "keep-module-urls",
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      const url = JSON.stringify(pathToFileURL(args.path).href);
      return { contents: text.replace(/\bimport\.meta\.url\b/g, url), loader: "ts" };
    });
  },
};

/** esbuild's options for `source` (a path under `root`): one ESM module for this Node, with a metafile. */
export function entryBuildOptions(source, root) {
  return {
    absWorkingDir: root,
    entryPoints: [source],
    // Its packages too: one file for Node to read and compile instead of one per file of each
    // package (undici alone is dozens, each found through package.json lookups); starts are
    // measured by `npm run bench:startup`. Their CommonJS code reaches Node's built-ins through
    // the `require` the banner makes (an ES module has none).
    bundle: true,
    // Loaded when first used (agent/certificates/acme.ts): it and its packages are half the agent's
    // code, which every start would read and compile for an issuance most hosts never make.
    external: ["acme-client"],
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
 * `text` with every non-ASCII character as a \u escape. esbuild escapes them in strings already;
 * what is left are comments its packages keep (undici's "request’s …"), and one such character in
 * a megabytes-long module makes Node decode all of it the slow way and V8 hold it as a two-byte
 * string (~30 ms of an agent's start, for its bundle alone). In a comment, a string or a regular
 * expression an escape means the same character; only a raw template (String.raw) would read it
 * differently, and no bundled package has one with such a character.
 */
function asciiOnly(text) {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Writes a build's output to `bundle` followed by its inputs' record; aside, then renamed, so a
 * process starting meanwhile reads the old bundle or the new one, whole.
 */
export function writeBundle(bundle, result, root) {
  mkdirSync(path.dirname(bundle), { recursive: true });
  const temp = `${bundle}.${process.pid}.tmp`;
  writeFileSync(temp, `${asciiOnly(result.outputFiles[0].text)}${inputsRecord(result.metafile.inputs, root)}`);
  renameSync(temp, bundle);
}
