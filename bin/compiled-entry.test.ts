import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleIsFresh, writeBundle } from "../lib/entry-bundle.mjs";
import { importEntry } from "./compiled-entry.mjs";

let root: string;
let cacheDir: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "gp-entry-"));
  cacheDir = path.join(root, "cache");
  await writeFile(path.join(root, "value.ts"), 'export const value: string = "one";\n');
  await writeFile(
    path.join(root, "main.ts"),
    'export { value } from "./value.ts";\nexport const url: string = import.meta.url;\nexport const built = "main";\n',
  );
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The bundle's text says what was compiled (Node caches the imported module by URL: its exports would not). */
const load = async () => {
  const mod = await importEntry("main.ts", { root, cacheDir });
  const [bundle] = await readdir(cacheDir);
  return { mod, text: await readFile(path.join(cacheDir, bundle!), "utf8") };
};

describe("importEntry", () => {
  it("compiles the entry and what it imports into one module, and gives each module its source's URL", async () => {
    const { mod, text } = await load();
    expect(mod.value).toBe("one");
    expect(mod.url).toBe(new URL(`file://${path.join(root, "main.ts")}`).href);
    expect(text).toContain("gateplane-inputs=");
    expect(await readdir(cacheDir)).toEqual([expect.stringMatching(/^main-[0-9a-f]{8}\.mjs$/)]);
  });

  it("compiles again when a source it was built from changed, and only then", async () => {
    const first = (await load()).text;
    expect((await load()).text).toBe(first);
    await writeFile(path.join(root, "value.ts"), 'export const value: string = "two";\n');
    const second = (await load()).text;
    expect(second).not.toBe(first);
    expect(second).toContain('"two"');
    // Same size, another mtime (an editor's save of equal length) is a change too.
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(root, "value.ts"), later, later);
    const inputs = (text: string) => text.slice(text.lastIndexOf("gateplane-inputs="));
    expect(inputs((await load()).text)).not.toBe(inputs(second));
  });

  it("falls back to compiling on import when the cache cannot be written", async () => {
    await writeFile(path.join(root, "cache"), "a file where the cache directory would be");
    const mod = await importEntry("main.ts", { root, cacheDir: path.join(cacheDir, "sub") });
    expect(mod.value).toBe("one");
    expect(mod.url).toBe(new URL(`file://${path.join(root, "main.ts")}`).href);
  });

  it("writes an ASCII bundle: what its comments kept becomes an escape, and a string's value is the same", async () => {
    await writeFile(
      path.join(root, "value.ts"),
      '/*! A licence’s comment, kept by esbuild */\nexport const value: string = "café → ≤ 😀";\n',
    );
    const { mod, text } = await load();
    expect(mod.value).toBe("café → ≤ 😀");
    expect(text).toContain("licence\\u2019s");
    expect(/[\u0080-\uffff]/.test(text)).toBe(false);
  });
});

describe("bundleIsFresh", () => {
  it("finds the inputs' record at the end of a bundle, however long the record and the code before it", async () => {
    // 2,000 inputs: a record of ~100 KB, past the tail the check reads first.
    const inputs: Record<string, unknown> = {};
    for (let i = 0; i < 2000; i++) {
      const name = `input-with-a-long-enough-name-${String(i).padStart(5, "0")}.ts`;
      await writeFile(path.join(root, name), "");
      inputs[name] = {};
    }
    const bundle = path.join(root, "big.mjs");
    writeBundle(bundle, { outputFiles: [{ text: `// ${"x".repeat(500_000)}\n` }], metafile: { inputs } }, root);
    expect(bundleIsFresh(bundle, root)).toBe(true);
    await writeFile(path.join(root, "input-with-a-long-enough-name-01999.ts"), "changed");
    expect(bundleIsFresh(bundle, root)).toBe(false);
  });

  it("is false for a bundle without a record, an empty file and no file", async () => {
    await writeFile(path.join(root, "plain.mjs"), "export const a = 1;\n");
    await writeFile(path.join(root, "empty.mjs"), "");
    expect(bundleIsFresh(path.join(root, "plain.mjs"), root)).toBe(false);
    expect(bundleIsFresh(path.join(root, "empty.mjs"), root)).toBe(false);
    expect(bundleIsFresh(path.join(root, "none.mjs"), root)).toBe(false);
  });
});
