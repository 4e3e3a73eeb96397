/**
 * Checks the import graph of the product code: no circles, and no arrow that crosses the house's
 * walls. `schema/` is the bottom; the control plane (`core/` under `worker/` and `durable-objects/`)
 * sits on one side, the host (`agent/`, `proxy/`) on the other; the CLI and the local host daemon
 * stand alone (beside `lib/`, Node helpers that know no part). Only `worker/index.ts` knows the Durable Object classes (it exports them to workerd).
 *
 * Type-only imports count: a type that crosses a wall still couples the two sides.
 *
 *   npx tsx scripts/check-imports.ts          # prints the arrows between parts, then problems
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

/** What each part may import, besides itself. Parts not listed here (scripts, bench, test) are free. */
const ALLOWED: Record<string, string[]> = {
  schema: [],
  core: ["schema"],
  "durable-objects": ["schema", "core"],
  worker: ["schema", "core"],
  // Node helpers that know no part of Gateplane (atomic file replacement; an entry compiled to one
  // module and reused while its sources are unchanged), needed by the host-side processes and the
  // bins. Imports nothing of ours.
  lib: [],
  agent: ["schema", "proxy", "lib"], // the agent embeds the proxy; the proxy never imports the agent
  proxy: ["schema", "lib"],
  cli: ["schema"],
  "local-host": ["schema", "lib"],
};
/** Named exceptions, each with its reason. */
const EXCEPTIONS: { from: string; to: string; why: string }[] = [
  { from: "worker/index.ts", to: "durable-objects", why: "exports the object classes to workerd" },
];

const root = join(dirname(new URL(import.meta.url).pathname), "..");
const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"], {
  cwd: root,
  encoding: "utf8",
})
  .split("\n")
  .filter((f) => f && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
  .filter((f) => partOf(f) in ALLOWED);
const known = new Set(files);

function partOf(file: string): string {
  return file.split("/")[0] ?? "";
}

const SPECIFIER =
  /(?:^|\n)\s*(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

const edges = new Map<string, string[]>();
for (const file of files) {
  const text = readFileSync(join(root, file), "utf8");
  const targets: string[] = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const spec = m[1] ?? m[2];
    if (!spec?.startsWith(".")) continue;
    const target = normalize(join(dirname(file), spec));
    if (known.has(target)) targets.push(target);
  }
  edges.set(file, targets);
}

const problems: string[] = [];
const arrows = new Map<string, number>();
for (const [from, targets] of edges) {
  for (const to of targets) {
    const a = partOf(from);
    const b = partOf(to);
    if (a === b) continue;
    const key = `${a} → ${b}`;
    arrows.set(key, (arrows.get(key) ?? 0) + 1);
    const excepted = EXCEPTIONS.some((e) => e.from === from && e.to === b);
    if (!excepted && !ALLOWED[a]?.includes(b)) problems.push(`${from} imports ${to} (${a} may not import ${b})`);
  }
}

// Tarjan's strongly connected components: every component of more than one file is a circle.
const index = new Map<string, number>();
const low = new Map<string, number>();
const onStack = new Set<string>();
const stack: string[] = [];
let counter = 0;
const circles: string[][] = [];
function visit(v: string): void {
  index.set(v, counter);
  low.set(v, counter);
  counter++;
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
  }
  if (low.get(v) === index.get(v)) {
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) circles.push(component.sort());
  }
}
for (const f of files) if (!index.has(f)) visit(f);

console.log(`${files.length} product files, ${[...edges.values()].reduce((n, t) => n + t.length, 0)} imports`);
console.log("arrows between parts:");
for (const [key, n] of [...arrows].sort()) console.log(`  ${key.padEnd(32)} ${n}`);
for (const c of circles) problems.push(`circle of ${c.length} files: ${c.join(", ")}`);
if (problems.length === 0) {
  console.log("no circles, no arrow across a wall");
} else {
  console.log(`${problems.length} problem(s):`);
  for (const p of problems) console.log(`  ${p}`);
  process.exitCode = 1;
}
