/**
 * @module
 * `npm run bench:router`: what the built-in routing policies cost and what they buy.
 * 1. Decision cost: µs per decision (p50/p99) for each policy over 8 workers with prompts of 1, 8
 *    and 32 K characters, cache_aware's tree first filled to its budget (`--tree-size` characters per
 *    worker, evicted to it as the proxy would) — round robin is the peer in the same run.
 * 2. The tree's memory: heap growth after GC for the filled tree (run with --expose-gc).
 * 3. Routing quality on a simulated fleet (`router-sim.ts`): SGLang's generated-shared-prefix
 *    workload and a multi-turn chat workload, per policy, plus the oracle's hit rate.
 *
 * Flags: --workers 8, --tree-size 4194304 (SGLang's default is 67108864; needs a few GB of heap),
 * --decisions 2000, --seed 1, --processes 2 (the per-process cache_aware row), --skip-sim.
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { CacheAware } from "../proxy/policies/cache-aware.ts";
import type { Policy } from "../proxy/policies/policy.ts";
import { PowerOfTwo } from "../proxy/policies/power-of-two.ts";
import { RandomPolicy } from "../proxy/policies/random.ts";
import { RoundRobin } from "../proxy/policies/round-robin.ts";
import { CACHE_AWARE_DEFAULTS } from "../schema/router.ts";
import { renderTable } from "./report.ts";
import {
  DEFAULT_COST,
  multiTurnWorkload,
  oracleHitRate,
  SIM_POLICIES,
  type SimRequest,
  seeded,
  sharedPrefixWorkload,
  simulate,
} from "./router-sim.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "8" },
    "tree-size": { type: "string", default: String(2 ** 22) },
    decisions: { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
    processes: { type: "string", default: "2" },
    "skip-sim": { type: "boolean", default: false },
  },
});
const positive = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`--${name}: expected a whole number ≥ 1, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
};
const WORKERS = positive("workers", values.workers);
const TREE_SIZE = positive("tree-size", values["tree-size"]);
const DECISIONS = positive("decisions", values.decisions);
const SEED = positive("seed", values.seed);
const PROCESSES = positive("processes", values.processes);

const gc = (globalThis as { gc?: () => void }).gc;
const heapUsed = () => {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
};

interface Worker {
  inFlight: number;
}

const rand = seeded(SEED);
const ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?0123456789";
/** Flat strings, as JSON.parse gives the proxy (a `+=` rope would be flattened inside the timed code). */
const randomText = (n: number) =>
  Array.from({ length: n }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]).join("");
/** Requests as a gateway sees them: one of 64 shared system prompts (half the text), then their own part. */
const SYSTEM_PROMPTS = Array.from({ length: 64 }, () => randomText(16 * 1024));
const prompt = (chars: number) => {
  const shared = SYSTEM_PROMPTS[Math.floor(rand() * SYSTEM_PROMPTS.length)]!.slice(0, Math.floor(chars / 2));
  return [shared, randomText(chars - shared.length)].join("");
};

/** Inserts prompts round robin until every worker holds its budget, then evicts to it (the proxy's steady state). */
function fill(policy: CacheAware<Worker>, fleet: Worker[]): number {
  let inserted = 0;
  for (let i = 0; fleet.some((w) => policy.tree.size(w) < TREE_SIZE); i++) {
    const text = prompt(8 * 1024);
    policy.tree.insert(text, fleet[i % fleet.length]!);
    inserted += text.length;
  }
  policy.tree.evict(TREE_SIZE);
  return inserted;
}

function decisionCost(): void {
  const fleet: Worker[] = Array.from({ length: WORKERS }, () => ({ inFlight: 0 }));
  const before = heapUsed();
  const cacheAware = new CacheAware<Worker>({ ...CACHE_AWARE_DEFAULTS, max_tree_size: TREE_SIZE }, fleet, 0);
  const t0 = performance.now();
  const inserted = fill(cacheAware, fleet);
  const fillSeconds = (performance.now() - t0) / 1000;
  const held = fleet.reduce((n, w) => n + cacheAware.tree.size(w), 0);
  const treeBytes = heapUsed() - before;
  const policies: [string, Policy<Worker>][] = [
    ["round_robin", new RoundRobin()],
    ["random", new RandomPolicy()],
    ["power_of_two", new PowerOfTwo()],
    ["cache_aware", cacheAware],
  ];
  const lines: string[][] = [["policy", "prompt", "p50 µs", "p99 µs", "mean µs", "× round_robin p50"]];
  for (const kchars of [1, 8, 32]) {
    const texts = Array.from({ length: 256 }, () => prompt(kchars * 1024));
    let peerP50 = 0;
    for (const [name, policy] of policies) {
      const times: number[] = [];
      for (let i = 0; i < DECISIONS; i++) {
        // Loads move as in a proxy: a few requests in flight per worker.
        for (const w of fleet) w.inFlight = Math.floor(rand() * 8);
        const text = texts[i % texts.length]!;
        const start = performance.now();
        policy.select(fleet, text, 0);
        times.push((performance.now() - start) * 1000);
      }
      times.sort((a, b) => a - b);
      const p50 = times[Math.floor(times.length / 2)]!;
      const p99 = times[Math.floor(times.length * 0.99)]!;
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      if (name === "round_robin") peerP50 = p50;
      lines.push([
        name,
        `${kchars} K chars`,
        p50.toFixed(2),
        p99.toFixed(2),
        mean.toFixed(2),
        name === "round_robin" ? "1" : (p50 / peerP50).toFixed(0),
      ]);
    }
  }
  console.log(`\n## Decision cost (${WORKERS} workers, ${DECISIONS} decisions per row)\n`);
  console.log(renderTable(lines, 2));
  console.log(
    `\n## cache_aware tree memory\n\nbudget ${TREE_SIZE} chars/worker × ${WORKERS} workers; filled with ${(inserted / 1e6).toFixed(1)} M chars in ${fillSeconds.toFixed(1)} s, ` +
      `holding ${(held / 1e6).toFixed(1)} M chars after eviction: heap +${(treeBytes / 2 ** 20).toFixed(0)} MiB ` +
      `(${(treeBytes / held).toFixed(2)} bytes per held char)${gc ? "" : " — run with --expose-gc for a meaningful figure"}`,
  );
  // Keep the tree alive until it was measured.
  if (cacheAware.tree.size(fleet[0]!) < 0) console.log("unreachable");
}

function qualityTable(title: string, requests: SimRequest[], note: string): void {
  const lines: string[][] = [
    [
      "policy",
      "hit rate",
      "throughput tok/s",
      "TTFT p50 s",
      "TTFT p99 s",
      "max/min requests per worker",
      "vs round_robin",
    ],
  ];
  const results = new Map<string, ReturnType<typeof simulate>>();
  const rows: [string, () => ReturnType<typeof simulate>][] = [
    ...Object.entries(SIM_POLICIES).map(
      ([name, factory]) =>
        [name, () => simulate(requests, factory, WORKERS, DEFAULT_COST)] as [string, () => ReturnType<typeof simulate>],
    ),
    [
      `cache_aware, ${PROCESSES} proxy processes`,
      () => simulate(requests, SIM_POLICIES.cache_aware!, WORKERS, DEFAULT_COST, PROCESSES),
    ],
  ];
  for (const [name, run] of rows) results.set(name, run());
  const rr = results.get("round_robin")!;
  for (const [name, r] of results) {
    lines.push([
      name,
      `${(r.hitRate * 100).toFixed(1)} %`,
      r.throughput.toFixed(0),
      r.ttftP50.toFixed(2),
      r.ttftP99.toFixed(2),
      `${r.maxServed} / ${r.minServed}`,
      name === "round_robin" ? "" : `${(r.throughput / rr.throughput).toFixed(2)}× throughput`,
    ]);
  }
  lines.push(["oracle (bound)", `${(oracleHitRate(requests) * 100).toFixed(1)} %`, "", "", "", "", ""]);
  console.log(`\n## ${title}\n\n${note}\n`);
  console.log(renderTable(lines, 1));
}

function quality(): void {
  const c = DEFAULT_COST;
  console.log(
    `\n# Simulated fleet: ${WORKERS} workers, prefix cache ${c.cacheTokens} tokens each (LRU, 16-token blocks), ` +
      `prefill ${c.prefillPerToken * 1e6} µs/uncached token + ${c.prefillBase * 1000} ms, decode ${c.decodePerToken * 1000} ms/token, ` +
      `${c.concurrency} running per worker`,
  );
  qualityTable(
    "Workload 1: generated-shared-prefix (64 groups × 16 prompts, 2048-token system prompt, 128-token question, 256-token output, all at once)",
    sharedPrefixWorkload(SEED),
    "SGLang (8 × A100, Llama-3.1-8B): cache_aware 75 % hit, 158,596 tok/s; round robin 20 % hit, 82,665 tok/s (1.9×).",
  );
  qualityTable(
    "Workload 2: multi-turn chat (256 conversations × 6 turns over 30 s, 4 shared 512-token system prompts, 96-token messages, 192-token answers)",
    multiTurnWorkload(SEED),
    "Later turns extend earlier ones (prompt + answer + new message).",
  );
}

const started = performance.now();
decisionCost();
if (!values["skip-sim"]) quality();
console.log(`\n(bench ran in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
