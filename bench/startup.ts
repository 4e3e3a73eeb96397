/**
 * @module
 * `npm run bench:startup`: the CPU and wall time a process of ours takes to start — the CLI, the
 * agent and the standalone proxy through their bins (`--help`: the bundle's freshness check, its
 * load, and exit), and a proxy serving process from its bundle (its parent checks the bundle once
 * for all of them; it exits once its parent lets go). Beside each, in the same run: bare `node`
 * (the floor any Node process pays) and the entry as it was built and checked before: acme-client
 * and its packages inside the agent's bundle, comments' non-ASCII characters kept, and the whole
 * bundle read to find its inputs' record (`lib/entry-bundle.mjs`). Hosts start these on every
 * restart and upgrade, and the test suite ~250 times.
 *
 * Options: `--runs N` (default 15; the median is printed).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { bundleFile } from "../bin/compiled-entry.mjs";
import { entryBuildOptions, keepModuleUrls, MARK } from "../lib/entry-bundle.mjs";
import { renderTable } from "./report.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { runs: { type: "string", default: "15" } } });
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a whole number ≥ 1, got ${values.runs}`);

const dir = mkdtempSync(path.join(tmpdir(), "gp-bench-startup-"));
// Loaded first by each measured process: writes the process's whole CPU time at its exit.
const REPORTER = path.join(dir, "report-cpu.cjs");
writeFileSync(
  REPORTER,
  `process.on("exit", () => { const c = process.cpuUsage(); require("node:fs").writeFileSync(process.env.GP_CPU_FILE, String((c.user + c.system) / 1e6)); });\n`,
);

interface Target {
  /** The module Node runs, and its arguments. */
  args: string[];
  /** A serving process waits for its parent: it is started with IPC and let go. */
  ipc?: boolean;
  bytes?: number;
}

/** One start: CPU seconds of the process (from its own exit) and wall seconds. */
function once(target: Target, n: number): Promise<{ cpu: number; wall: number }> {
  const cpuFile = path.join(dir, `cpu-${n}`);
  const started = performance.now();
  const child = spawn(process.execPath, ["--require", REPORTER, ...target.args], {
    cwd: ROOT,
    env: { ...process.env, GP_CPU_FILE: cpuFile },
    stdio: target.ipc ? ["ignore", "ignore", "ignore", "ipc"] : "ignore",
  });
  if (target.ipc) child.once("spawn", () => child.disconnect());
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", () => {
      const wall = (performance.now() - started) / 1000;
      resolve({ cpu: Number(readFileSync(cpuFile, "utf8")), wall });
    });
  });
}

/** The inputs' record at the end of a current bundle (the "before" build gets the same to check). */
function recordOf(bundle: string): string {
  const text = readFileSync(bundle, "utf8");
  return text.slice(text.lastIndexOf(MARK));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs a bundle as the bins did before: the whole bundle read (as UTF-8) to find its inputs' record. */
const BEFORE_LOADER = path.join(dir, "before-loader.mjs");
writeFileSync(
  BEFORE_LOADER,
  `import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [root, bundle] = process.argv.splice(2, 2);
const text = readFileSync(bundle, "utf8");
const inputs = JSON.parse(text.slice(text.lastIndexOf(${JSON.stringify(MARK)}) + ${MARK.length}));
for (const file of Object.keys(inputs)) statSync(path.join(root, file));
await import(pathToFileURL(bundle).href);
`,
);

/** The entry bundled as before: acme-client and its packages inside, comments' characters as they are. */
async function bundledAsBefore(source: string, name: string, record: string): Promise<string> {
  const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
  const result = await esbuild.build({
    ...entryBuildOptions(path.join(ROOT, source), ROOT),
    external: [],
    plugins: [keepModuleUrls],
  });
  // Beside the current bundles: bare imports resolve from the package's node_modules.
  const file = path.join(ROOT, "node_modules/.cache/gateplane", `bench-before-${name}.mjs`);
  writeFileSync(file, `${result.outputFiles[0]!.text}${record}`);
  return file;
}

const rows: string[][] = [["process", "build", "bundle MB", "CPU ms (median)", "wall ms (median)", "CPU vs before"]];
const befores: string[] = [];
try {
  // Build the current bundles (a start builds what is stale) before anything is timed.
  for (const bin of ["gateplane.mjs", "gateplane-agent.mjs", "gateplane-proxy.mjs"]) {
    await once({ args: [path.join(ROOT, "bin", bin), "--help"] }, 0);
  }
  const { forkChild, ENTRY_BUNDLE } = await import("../proxy/process-fork.ts");
  // Forking one builds the serving process's bundle when stale; it is not needed beyond that.
  forkChild("handle", []).process.kill("SIGKILL");

  const kinds: { name: string; source: string; bundle: string; bin?: string; ipc?: boolean }[] = [
    { name: "CLI", source: "cli/main.ts", bundle: bundleFile("cli/main.ts"), bin: "gateplane.mjs" },
    { name: "agent", source: "agent/main.ts", bundle: bundleFile("agent/main.ts"), bin: "gateplane-agent.mjs" },
    {
      name: "proxy",
      source: "proxy/control/main.ts",
      bundle: bundleFile("proxy/control/main.ts"),
      bin: "gateplane-proxy.mjs",
    },
    { name: "serving process", source: "proxy/process-main.ts", bundle: ENTRY_BUNDLE, ipc: true },
  ];
  const floor: Target = { args: ["-e", "0"] };
  const targets: { kind: string; build: string; target: Target }[] = [{ kind: "bare node", build: "-", target: floor }];
  for (const kind of kinds) {
    const now = kind.bundle;
    const before = await bundledAsBefore(kind.source, path.basename(now, ".mjs"), recordOf(now));
    befores.push(before);
    const beforeArgs = kind.bin ? [BEFORE_LOADER, ROOT, before, "--help"] : [before];
    const nowArgs = kind.bin ? [path.join(ROOT, "bin", kind.bin), "--help"] : [now];
    const sized = (file: string) => statSync(file).size;
    targets.push({
      kind: kind.name,
      build: "before",
      target: { args: beforeArgs, ipc: kind.ipc, bytes: sized(before) },
    });
    targets.push({ kind: kind.name, build: "now", target: { args: nowArgs, ipc: kind.ipc, bytes: sized(now) } });
  }
  // Interleaved rounds: a machine that slows down mid-run slows every target alike.
  const samples = targets.map(() => ({ cpu: [] as number[], wall: [] as number[] }));
  let n = 1;
  for (let round = 0; round < RUNS; round++) {
    for (const [i, { target }] of targets.entries()) {
      const { cpu, wall } = await once(target, n++);
      samples[i]!.cpu.push(cpu);
      samples[i]!.wall.push(wall);
    }
  }
  for (const [i, { kind, build, target }] of targets.entries()) {
    const cpu = median(samples[i]!.cpu);
    const beforeIndex = targets.findIndex((t) => t.kind === kind && t.build === "before");
    const vs = build === "now" ? `${((cpu / median(samples[beforeIndex]!.cpu) - 1) * 100).toFixed(0)} %` : "";
    rows.push([
      kind,
      build,
      target.bytes ? (target.bytes / 1e6).toFixed(2) : "-",
      (cpu * 1000).toFixed(0),
      (median(samples[i]!.wall) * 1000).toFixed(0),
      vs,
    ]);
  }
  console.log(`${RUNS} starts of each, interleaved; CPU is the process's own (user + system) at its exit.\n`);
  console.log(renderTable(rows));
} finally {
  for (const file of befores) rmSync(file, { force: true });
  rmSync(dir, { recursive: true, force: true });
}
