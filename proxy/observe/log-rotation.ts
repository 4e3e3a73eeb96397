/**
 * @module
 * Size rotation of the access log, done by one process for all that write the file: the proxy's
 * parent (or the only process). A writer that sees the file past `max_size` asks for it; the
 * rotator renames `access.log` to `access.log.1` (`.1` to `.2`, …, the oldest past `max_files`
 * overwritten) and then every writer reopens the path (`LineWriter.reopen`), as nginx's workers
 * do on USR1. Lines written between the rename and the reopen land whole in `access.log.1`.
 *
 * Asking twice is harmless: the size is checked again before renaming, so the writers that saw
 * the same full file cause one rotation; rotations run one at a time.
 */
import { readdir, rename, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";

export const ACCESS_LOG_FILE = "access.log";

/** Renames `path` to `path.1` (shifting older files up to `path.<maxFiles>`) if it holds `maxSize` bytes or more. */
export async function rotateIfFull(path: string, maxSize: number, maxFiles: number): Promise<boolean> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  if (size < maxSize) return false;
  // Only the rotated files there are get shifted (one listing, not max_files renames to try).
  const name = basename(path);
  const present = new Set(
    (await readdir(dirname(path))).filter((f) => f.startsWith(`${name}.`)).map((f) => f.slice(name.length + 1)),
  );
  for (let i = maxFiles - 1; i >= 1; i--) {
    if (present.has(String(i))) await rename(`${path}.${i}`, `${path}.${i + 1}`);
  }
  await rename(path, `${path}.1`);
  return true;
}

export interface RotationTarget {
  path: string;
  maxSize: number;
  maxFiles: number;
}

/** Rotations one at a time; `reopen` runs after each one that renamed the file. */
export class LogRotator {
  readonly #log: (line: string) => void;
  #chain: Promise<void> = Promise.resolve();

  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  /** Rotates `target` if it is full, then calls `reopen`. Resolves when done (never rejects). */
  rotate(target: RotationTarget, reopen: () => void): Promise<void> {
    const run = async () => {
      try {
        if (await rotateIfFull(target.path, target.maxSize, target.maxFiles)) reopen();
      } catch (err) {
        this.#log(`access log: rotation of ${target.path} failed: ${(err as Error).message}`);
      }
    };
    this.#chain = this.#chain.then(run);
    return this.#chain;
  }
}
