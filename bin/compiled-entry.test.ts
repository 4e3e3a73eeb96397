import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
});
