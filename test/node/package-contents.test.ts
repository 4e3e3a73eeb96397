/**
 * The package tarball (`npm pack`) is what cloud hosts install from `AGENT_PACKAGE_URL`
 * (`npm install --global --omit=dev <tarball>`, then `gateplane-agent`). It must hold what runs there
 * and nothing that only the tests use: `package.json`'s `files` list decides, and this test keeps it
 * honest both ways — nothing test-only in, and every module the shipped entry points import in.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { build } from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/stack.ts";

/** What runs from the tarball: the two bins, the agent's and the CLI's main (which the bins compile
 * and import by path, at run time) and the proxy's child processes (which the proxy bundles and forks). */
const ENTRY_POINTS = [
  "bin/gateplane-agent.mjs",
  "bin/gateplane.mjs",
  "agent/main.ts",
  "cli/main.ts",
  "proxy/process-main.ts",
];

let packed: string[];
beforeAll(async () => {
  const { stdout } = await promisify(execFile)("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: ROOT,
    env: { ...process.env, npm_config_loglevel: "silent" },
  });
  const [report] = JSON.parse(stdout) as { files: { path: string }[] }[];
  packed = report!.files.map((f) => f.path).sort();
}, 60_000);

describe("the package tarball", () => {
  it("holds the bins and the host's parts", () => {
    for (const file of ["package.json", "bin/compiled-entry.mjs", ...ENTRY_POINTS]) {
      expect(packed).toContain(file);
    }
  });

  it("holds no test, fake, fixture or benchmark", () => {
    const testOnly = packed.filter(
      (f) =>
        f.endsWith(".test.ts") ||
        /^(test|bench|scripts|examples|\.ci)\//.test(f) ||
        /(^|\/)(testing|test-support|fakes?|fixtures)(\/|\.ts$)/.test(f),
    );
    expect(testOnly).toEqual([]);
  });

  it("holds no control-plane code (the Worker, the objects, the local host daemon)", () => {
    expect(packed.filter((f) => /^(worker|durable-objects|local-host|migrations)\//.test(f))).toEqual([]);
  });

  it("holds every module the shipped entry points import, and hosts install every package they import", async () => {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: ENTRY_POINTS,
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      packages: "external",
      metafile: true,
      outdir: "unused",
      logLevel: "silent",
    });
    const missing = Object.keys(result.metafile.inputs).filter((f) => !packed.includes(f));
    expect(missing).toEqual([]);
    // Hosts install with --omit=dev: a package the shipped code imports must be a dependency.
    const { dependencies } = JSON.parse(await readFile(`${ROOT}/package.json`, "utf8")) as {
      dependencies: Record<string, string>;
    };
    const imported = Object.values(result.metafile.inputs).flatMap((input) =>
      input.imports.filter((i) => i.external && !i.path.startsWith("node:")).map((i) => packageName(i.path)),
    );
    expect([...new Set(imported)].filter((name) => !(name in dependencies))).toEqual([]);
  });
});

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return (specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)).join("/");
}
