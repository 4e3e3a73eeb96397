/** Precedes the JSON of a bundle's inputs record at its end. */
export const MARK: string;
/** True when `bundle` exists and every input recorded at its end still has the size and mtime it had. */
export function bundleIsFresh(bundle: string, root: string): boolean;
/** esbuild's options for `source` (a path under `root`): one ESM module for this Node, with a metafile. */
export function entryBuildOptions(
  source: string,
  root: string,
): import("esbuild").BuildOptions & { write: false; metafile: true };
/** Writes a build's output to `bundle` followed by its inputs' record (aside, then renamed). */
export function writeBundle(
  bundle: string,
  result: { outputFiles: { text: string }[]; metafile: { inputs: Record<string, unknown> } },
  root: string,
): void;
/** The esbuild plugin that gives each bundled module its source's `import.meta.url`. */
export const keepModuleUrls: import("esbuild").Plugin;
