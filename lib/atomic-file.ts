/**
 * @module
 * Replacing a file so that a reader, or the next start after a crash or a power cut, sees the old
 * content or the new one, never half of either: write a sibling temp file, fsync it, rename it over
 * the target, fsync the directory. Used by the agent (its state disk) and the local host daemon and
 * `npm start` stack (their state files); it knows nothing of either, so it lives below both in `lib/`.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";

export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(tmp, "w", mode);
  try {
    await handle.writeFile(data);
    // Without it a power loss after the rename can leave an empty file on some file systems (ext4 delalloc).
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(file));
}

/** Makes the rename itself durable. Best effort: some platforms cannot open a directory for fsync. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The file's content is already synced; at worst a crash right now brings back the previous file.
  }
}
