import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { migrateLocalD1, migrationsDigest } from "./migrations.ts";

/**
 * A checkout whose `node_modules/.bin/wrangler` stands in for wrangler's `d1 migrations apply`: it
 * records each call and "applies" by writing the migrations' names into its D1 file, so what a
 * state holds says which migrations reached it.
 */
async function checkout(dir: string): Promise<{ root: string; calls: () => Promise<number> }> {
  const root = path.join(dir, "checkout");
  await mkdir(path.join(root, "migrations"), { recursive: true });
  await mkdir(path.join(root, "node_modules", ".bin"), { recursive: true });
  await writeFile(path.join(root, "migrations", "0000_init.sql"), "CREATE TABLE a (x);\n");
  const bin = path.join(root, "node_modules", ".bin", "wrangler");
  // argv: d1 migrations apply DB --local --persist-to <dir> --config <file>
  await writeFile(
    bin,
    `#!/bin/sh\necho call >> "${root}/calls.log"\nmkdir -p "$7/v3/d1"\nls "${root}/migrations" > "$7/v3/d1/db.sqlite"\n`,
  );
  await chmod(bin, 0o755);
  const calls = async () =>
    (await readFile(path.join(root, "calls.log"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
  return { root, calls };
}

describe("the local D1's migrations", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("applies once, skips on restart, starts new states from a template, and applies again when a migration is added", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gp-migrations-"));
    const { root, calls } = await checkout(dir);
    const cache = path.join(dir, "cache");
    const first = path.join(dir, "first");
    const db = (state: string) => readFile(path.join(state, "v3", "d1", "db.sqlite"), "utf8");

    expect(await migrateLocalD1(root, first, cache)).toBe("applied");
    expect(await migrateLocalD1(root, first, cache)).toBe("up to date");
    expect(await calls()).toBe(1);

    const second = path.join(dir, "second");
    expect(await migrateLocalD1(root, second, cache)).toBe("from template");
    expect(await db(second)).toBe("0000_init.sql\n");
    expect(await calls()).toBe(1);

    // A new migration: both states get it from wrangler; a new state after that from the new template.
    await writeFile(path.join(root, "migrations", "0001_more.sql"), "CREATE TABLE b (y);\n");
    expect(await migrateLocalD1(root, first, cache)).toBe("applied");
    expect(await db(first)).toBe("0000_init.sql\n0001_more.sql\n");
    expect(await migrateLocalD1(root, second, cache)).toBe("applied");
    expect(await calls()).toBe(3);
    const third = path.join(dir, "third");
    expect(await migrateLocalD1(root, third, cache)).toBe("applied"); // no template of this digest yet
    expect(await migrateLocalD1(root, path.join(dir, "fourth"), cache)).toBe("from template");
    expect(await calls()).toBe(4);
  });

  it("applies when the state was removed but its mark was left, and digests names and contents", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gp-migrations-"));
    const { root, calls } = await checkout(dir);
    const state = path.join(dir, "state");
    expect(await migrateLocalD1(root, state, path.join(dir, "cache"))).toBe("applied");
    await rm(path.join(state, "v3"), { recursive: true });
    expect(await migrateLocalD1(root, state, path.join(dir, "other-cache"))).toBe("applied");
    expect(await calls()).toBe(2);

    const before = await migrationsDigest(root);
    await writeFile(path.join(root, "migrations", "0000_init.sql"), "CREATE TABLE a (x, z);\n");
    expect(await migrationsDigest(root)).not.toBe(before);
  });
});
