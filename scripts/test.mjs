#!/usr/bin/env node
/**
 * `npm test`: the static checks (typecheck, lint with the import-graph check, links) and vitest, side
 * by side. vitest spends much of its run waiting on sockets and child processes, and the checks
 * (~17 CPU-s, one after another) fill that time instead of running before it: the suite's wall time
 * drops by about what the checks took. tsc runs single-threaded (`--singleThreaded` in the
 * typecheck script): beside vitest every core is taken, and tsc's parallel checkers cost 16 CPU-s
 * where one costs 9 (on its own, on 2 cores, single-threaded is faster too: 8 s against 12 s). vitest's output streams as it runs; each check's output is
 * printed after vitest's, under its name. The exit code is non-zero when anything failed.
 *
 * Arguments go to vitest (`npm test -- proxy/` runs the checks and those files).
 */
import { spawn } from "node:child_process";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** Runs `npm run <script>` with its output kept for later. */
function quietly(script) {
  return new Promise((resolve) => {
    const child = spawn(npm, ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code, signal) => resolve({ script, code: code ?? (signal ? 1 : 0), output }));
  });
}

async function checks() {
  const results = [];
  // One after another: two tsc processes at once beside vitest would take CPU it needs.
  for (const script of ["typecheck", "lint", "check:links"]) results.push(await quietly(script));
  return results;
}

const started = performance.now();
const checked = checks();
const vitest = new Promise((resolve) => {
  const child = spawn(process.execPath, ["node_modules/vitest/vitest.mjs", "run", ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
});

const [vitestCode, results] = await Promise.all([vitest, checked]);
let failed = vitestCode !== 0;
for (const { script, code, output } of results) {
  const text = output.trim();
  process.stdout.write(`\n${code === 0 ? "✓" : "✗"} npm run ${script}${code === 0 ? "" : ` (exit ${code})`}\n`);
  if (text) process.stdout.write(`${text}\n`);
  if (code !== 0) failed = true;
}
const seconds = Math.round((performance.now() - started) / 1000);
process.stdout.write(`\nnpm test: ${failed ? "FAILED" : "passed"} in ${seconds} s\n`);
process.exit(failed ? 1 : 0);
