import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PATCHES, patched } from "../worker/pool-patches.ts";

// The Workers project's changes to the pool's runtime modules (test/worker/pool-patches.ts) replace
// exact lines: each must still find them in the installed pool, once, or the patch has become moot
// (an upgraded pool) or silently stopped applying.
const poolDir = path.dirname(
  path.dirname(createRequire(import.meta.url).resolve("@cloudflare/vitest-pool-workers/config")),
);

describe.each(PATCHES)("the pool patch of $module", (patch) => {
  const file = path.join(poolDir, patch.module.replace(/^vitest-pool-workers\/dist\//, ""));
  const source = readFileSync(file, "utf8");

  it("finds its lines once in the installed pool and replaces them", () => {
    expect(source.split(patch.faulty)).toHaveLength(2);
    const after = patched(file, source);
    expect(after).not.toContain(patch.faulty);
    expect(after).toContain(patch.fixed);
  });

  it("leaves other modules alone", () => {
    expect(patched(path.join(poolDir, "worker/index.mjs"), source)).toBe(source);
  });
});
