/** True when `bundle` exists and every input recorded at its end still has the size and mtime it had. */
export function bundleIsFresh(bundle: string, root: string): boolean;
/** The text to write after a bundle's code: its inputs with their sizes and mtimes now. */
export function inputsRecord(metafileInputs: Record<string, unknown>, root: string): string;
