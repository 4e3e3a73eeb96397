/**
 * @module
 * The local D1's migrations, without paying for `wrangler d1 migrations apply` (a Node process of
 * wrangler's, ~3 CPU-s and ~2 s) when there is nothing to apply:
 *
 * - **A restart** of a stack whose D1 already has this checkout's migrations skips it: after an
 *   apply, `gateplane-migrations.json` beside wrangler's state records a digest of `migrations/`
 *   (every `.sql` file's name and contents); an unchanged digest means nothing is pending. A changed
 *   or added migration changes it, and wrangler applies what is new as before.
 * - **A new stack** (an empty state directory) starts from a copy of a D1 that has every migration:
 *   the state of the first new stack migrated with this digest, kept in the package's cache
 *   (`node_modules/.cache/gateplane/d1-<digest>/`). The same wrangler.toml names the same database
 *   file, so the copy is what wrangler would have made.
 *
 * Anything unexpected (no cache, a copy that fails) falls back to wrangler.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { applyMigrations } from "./wrangler.ts";

/** Beside wrangler's state (`v3/`): the digest of the migrations it has. */
export const MIGRATED_MARK = "gateplane-migrations.json";

/** The digest of `<root>/migrations/*.sql`: names and contents, in name order. */
export async function migrationsDigest(root: string): Promise<string> {
  const dir = path.join(root, "migrations");
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".sql")).sort()) {
    hash.update(`${name}\0`);
    hash.update(await readFile(path.join(dir, name)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

async function markOf(dir: string): Promise<string | null> {
  const text = await readFile(path.join(dir, MIGRATED_MARK), "utf8").catch(() => null);
  if (text === null) return null;
  try {
    return (JSON.parse(text) as { digest?: string }).digest ?? null;
  } catch {
    return null;
  }
}

/** Brings the local D1 in `persistTo` to every migration of `root`; `cacheDir` holds the templates. */
export async function migrateLocalD1(
  root: string,
  persistTo: string,
  cacheDir = path.join(root, "node_modules", ".cache", "gateplane"),
): Promise<"up to date" | "from template" | "applied"> {
  const digest = await migrationsDigest(root);
  const state = path.join(persistTo, "v3");
  if (existsSync(state) && (await markOf(persistTo)) === digest) return "up to date";

  const template = path.join(cacheDir, `d1-${digest.slice(0, 16)}`);
  const isNew = !existsSync(state);
  if (isNew && (await markOf(template)) === digest) {
    try {
      await cp(template, persistTo, { recursive: true });
      return "from template";
    } catch {
      await rm(state, { recursive: true, force: true });
    }
  }

  await applyMigrations(root, persistTo);
  await writeFile(path.join(persistTo, MIGRATED_MARK), `${JSON.stringify({ digest })}\n`);
  if (isNew) await keepTemplate(persistTo, template);
  return "applied";
}

/** Copies a just-migrated state to `template` (aside, then renamed: a concurrent start sees all of it or none). */
async function keepTemplate(persistTo: string, template: string): Promise<void> {
  const temp = `${template}.${process.pid}.tmp`;
  try {
    await cp(path.join(persistTo, "v3"), path.join(temp, "v3"), { recursive: true });
    await cp(path.join(persistTo, MIGRATED_MARK), path.join(temp, MIGRATED_MARK));
    await rename(temp, template);
  } catch {
    // Another start kept one first, or the cache is read-only: the next new stack applies them itself.
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
