/** Imports `entry` (a path from the package's root) compiled once into the cache, or under tsx. */
export function importEntry(
  entry: string,
  options?: { cacheDir?: string; root?: string },
): Promise<Record<string, unknown>>;
/** Where `entry`'s bundle is kept. */
export function bundleFile(entry: string, options?: { cacheDir?: string; root?: string }): string;
