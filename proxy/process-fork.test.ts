import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bundleIsFresh } from "../lib/entry-bundle.mjs";
import { buildBundle } from "./process-fork.ts";

describe("the serving process's bundle", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is reused while its sources are unchanged, and rebuilt when one changes or it is missing", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gp-bundle-"));
    const main = path.join(dir, "main.ts");
    const helper = path.join(dir, "helper.ts");
    const bundle = path.join(dir, "cache", "main.mjs");
    await writeFile(helper, "export const answer: number = 42;\n");
    await writeFile(main, 'import { answer } from "./helper.ts";\nconsole.log(answer);\n');

    expect(bundleIsFresh(bundle, dir)).toBe(false);
    buildBundle(main, bundle, dir);
    expect(bundleIsFresh(bundle, dir)).toBe(true);

    // An imported source saved again (same size, new mtime) makes the bundle stale.
    const later = new Date(Date.now() + 5_000);
    await utimes(helper, later, later);
    expect(bundleIsFresh(bundle, dir)).toBe(false);
    buildBundle(main, bundle, dir);
    expect(bundleIsFresh(bundle, dir)).toBe(true);

    await writeFile(bundle, "export {};\n"); // no record of its inputs: not trusted
    expect(bundleIsFresh(bundle, dir)).toBe(false);
  });
});
