/**
 * @module
 * `npm run bench:router`: what the built-in routing policies cost and what they buy.
 * 1. Decision cost: µs per decision (p50/p99) for each policy over 8 workers with prompts of 1, 8
 *    and 32 K characters, cache_aware's tree first filled to its budget (`--tree-size` characters per
 *    worker, evicted to it as the proxy would) — round robin is the peer in the same run.
 * 2. The tree's memory: heap growth after GC for the filled tree (run with --expose-gc).
 * 3. A decision through the host's routing state: in this process (`LocalRoutingGate`, no child
 *    processes) and over IPC from 2 forked stand-in proxy processes running the real `IpcRoutingGate`
 *    at once (`router-ipc-process.ts`), timed from `pick` to `routed` in the child, one at a time and 32 per
 *    event-loop turn (batched into one message).
 * 4. Routing quality on a simulated fleet (`router-quality.ts` over `router-sim.ts`, workloads in `router-workloads.ts`):
 *    SGLang's generated-shared-prefix workload, a multi-turn chat workload and an llm-d-like
 *    many-tenants workload, per policy (engine loads scraped every `--scrape` seconds), plus the
 *    oracle's hit rate.
 *
 * Flags: --workers 8, --tree-size 4194304 (SGLang's default is 67108864; needs a few GB of heap),
 * --ipc-tree-size 1048576 (the tree behind the IPC section), --decisions 2000, --seed 1,
 * --processes 2 (the simulated proxy processes), --scrape 2 (seconds between engine scrapes in the
 * simulation), --skip-ipc, --skip-sim.
 */
import { type ChildProcess, fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../proxy/balancer.ts";
import { CacheAware } from "../proxy/policies/cache-aware.ts";
import { createPolicy } from "../proxy/policies/index.ts";
import { LeastLoad } from "../proxy/policies/least-load.ts";
import type { EngineLoad, Policy } from "../proxy/policies/policy.ts";
import { PowerOfTwo } from "../proxy/policies/power-of-two.ts";
import { PrefixLoad } from "../proxy/policies/prefix-load.ts";
import { RandomPolicy } from "../proxy/policies/random.ts";
import { RoundRobin } from "../proxy/policies/round-robin.ts";
import type { FromProcess } from "../proxy/process-protocol.ts";
import { answerRoute, LocalRoutingGate } from "../proxy/routing-gate.ts";
import { type HostReplica, RoutingState } from "../proxy/routing-state.ts";
import {
  CACHE_AWARE_DEFAULTS,
  LEAST_LOAD_DEFAULTS,
  PREFIX_LOAD_DEFAULTS,
  prefixLoadOptions,
  type RouterConfig,
} from "../schema/router.ts";
import { configDocument } from "../test/support/config-builder.ts";
import { renderTable } from "./report.ts";
import type { RunMessage } from "./router-ipc-process.ts";
import { quality } from "./router-quality.ts";
import { seeded } from "./router-workloads.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "8" },
    "tree-size": { type: "string", default: String(2 ** 22) },
    "ipc-tree-size": { type: "string", default: String(2 ** 20) },
    decisions: { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
    processes: { type: "string", default: "2" },
    scrape: { type: "string", default: "2" },
    "skip-ipc": { type: "boolean", default: false },
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
const IPC_TREE_SIZE = positive("ipc-tree-size", values["ipc-tree-size"]);
const DECISIONS = positive("decisions", values.decisions);
const SEED = positive("seed", values.seed);
const PROCESSES = positive("processes", values.processes);
const SCRAPE = positive("scrape", values.scrape);

const gc = (globalThis as { gc?: () => void }).gc;
const heapUsed = () => {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
};

interface Worker {
  inFlight: number;
  engine?: EngineLoad | null;
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
function fill<T>(policy: { tree: CacheAware<T & Worker>["tree"] }, fleet: (T & Worker)[], budget = TREE_SIZE): number {
  let inserted = 0;
  for (let i = 0; fleet.some((w) => policy.tree.size(w) < budget); i++) {
    const text = prompt(8 * 1024);
    policy.tree.insert(text, fleet[i % fleet.length]!);
    inserted += text.length;
  }
  policy.tree.evict(budget);
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
  // prefix_load gets a tree of its own, filled the same way (the same budget, the same prompts).
  const prefixLoad = new PrefixLoad<Worker>(
    { ...PREFIX_LOAD_DEFAULTS, eviction_interval: 120, max_tree_size: TREE_SIZE },
    fleet,
    0,
  );
  fill(prefixLoad, fleet);
  const policies: [string, Policy<Worker>][] = [
    ["round_robin", new RoundRobin()],
    ["random", new RandomPolicy()],
    ["power_of_two", new PowerOfTwo()],
    ["least_load", new LeastLoad({ ...LEAST_LOAD_DEFAULTS })],
    ["cache_aware", cacheAware],
    ["prefix_load", prefixLoad],
  ];
  const lines: string[][] = [["policy", "prompt", "p50 µs", "p99 µs", "mean µs", "× round_robin p50"]];
  for (const kchars of [1, 8, 32]) {
    const texts = Array.from({ length: 256 }, () => prompt(kchars * 1024));
    let peerP50 = 0;
    for (const [name, policy] of policies) {
      const times: number[] = [];
      for (let i = 0; i < DECISIONS; i++) {
        // Loads move as in a proxy: a few requests in flight per worker, and a scrape of each engine.
        for (const w of fleet) {
          w.inFlight = Math.floor(rand() * 8);
          w.engine = {
            running: w.inFlight,
            waiting: Math.floor(rand() * 3),
            kvUsage: rand(),
            inFlightAtScrape: 0,
            at: 0,
          };
        }
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

const percentiles = (times: number[]) => {
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)]!, p99: times[Math.floor(times.length * 0.99)]! };
};

const IPC_CHILD = fileURLToPath(new URL("./router-ipc-process.ts", import.meta.url));

/** A forked stand-in proxy process whose routing questions this process answers from `state`. */
function startChild(
  state: RoutingState,
  owner: number,
): Promise<{ child: ChildProcess; run: (m: RunMessage) => Promise<number[]> }> {
  // Inherits this process's flags (`--import tsx`).
  const child = fork(IPC_CHILD, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let collect: ((times: number[]) => void) | null = null;
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.on("message", (message: FromProcess | { type: "times"; times: number[] }) => {
      if (message.type === "route") {
        const answer = answerRoute(state, owner, message);
        if (answer) child.send(answer);
      } else if (message.type === "times") collect?.(message.times);
      else if (message.type === "started")
        resolve({
          child,
          run: (m) =>
            new Promise((done) => {
              collect = done;
              child.send(m);
            }),
        });
    });
  });
}

async function ipcCost(): Promise<void> {
  const state = new RoutingState();
  const local = new LocalRoutingGate(state);
  const replicaUrls = Array.from({ length: WORKERS }, (_, i) => `http://10.0.0.${i + 1}:8000`);
  const children = await Promise.all([startChild(state, 1), startChild(state, 2)]);
  const texts = (kchars: number) => Array.from({ length: 64 }, () => prompt(kchars * 1024));
  const cacheAware: RouterConfig = {
    type: "sglang",
    policy: "cache_aware",
    ...CACHE_AWARE_DEFAULTS,
    max_tree_size: IPC_TREE_SIZE,
  };
  const prefixLoadRouter: RouterConfig = {
    type: "sglang",
    policy: "prefix_load",
    ...prefixLoadOptions(null),
    max_tree_size: IPC_TREE_SIZE,
  };
  const cases: [string, RouterConfig, string[]][] = [
    ["round_robin", { type: "sglang", policy: "round_robin" }, [""]],
    ["power_of_two", { type: "sglang", policy: "power_of_two" }, [""]],
    ["least_load", { type: "sglang", policy: "least_load" }, [""]],
    ["cache_aware, 1 K chars", cacheAware, texts(1)],
    ["cache_aware, 8 K chars", cacheAware, texts(8)],
    ["cache_aware, 32 K chars", cacheAware, texts(32)],
    ["prefix_load, 8 K chars", prefixLoadRouter, texts(8)],
  ];
  const lines: string[][] = [
    [
      "decision",
      "in-process p50 µs",
      "p99 µs",
      "2 processes over IPC p50 µs",
      "p99 µs",
      "IPC, 32 per turn µs/decision p50",
      "IPC / in-process p50",
    ],
  ];
  const filled = new Set<string>();
  for (const [name, router, list] of cases) {
    state.retain(configDocument(1, [{ name: "llm", replicas: replicaUrls, router }]));
    if ((router.policy === "cache_aware" || router.policy === "prefix_load") && !filled.has(router.policy)) {
      const policy = state.policy("llm") as CacheAware<HostReplica> | PrefixLoad<HostReplica>;
      fill(policy, [...policy.tree.tenants()], IPC_TREE_SIZE);
      filled.add(router.policy);
    }
    // In this process: the same state, the same code path as a proxy without child processes.
    const replicas = replicaUrls.map((url, i) => new ReplicaState("llm", `llm-${i}`, url));
    const route = {
      name: "llm",
      router,
      balancer: new Balancer(replicas, DEFAULT_HEALTH_POLICY, () => {}, createPolicy(router, replicas)),
    };
    const inProcess: number[] = [];
    for (let i = 0; i < DECISIONS; i++) {
      const start = performance.now();
      local.pick(route, null, list[i % list.length]!, {
        routed: (_r, lease) => {
          inProcess.push((performance.now() - start) * 1000);
          local.release(lease);
        },
      });
    }
    const message = (perTurn: number): RunMessage => ({
      type: "run",
      router,
      replicas: WORKERS,
      texts: list,
      decisions: DECISIONS,
      perTurn,
    });
    const single = (await Promise.all(children.map((c) => c.run(message(1))))).flat();
    const batched = (await Promise.all(children.map((c) => c.run(message(32))))).flat();
    const a = percentiles(inProcess);
    const b = percentiles(single);
    const c = percentiles(batched);
    lines.push([
      name,
      a.p50.toFixed(2),
      a.p99.toFixed(2),
      b.p50.toFixed(1),
      b.p99.toFixed(1),
      c.p50.toFixed(1),
      `${(b.p50 / a.p50).toFixed(0)}×`,
    ]);
  }
  // A child sends its last batch of released leases a turn after its last decision: let it arrive.
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const c of children) c.child.kill();
  const leaked = state.loads().reduce((n, l) => n + l.inFlight, 0);
  console.log(
    `\n## A decision through the host's routing state (${WORKERS} replicas; cache_aware tree ${IPC_TREE_SIZE} chars/replica; ${DECISIONS} decisions per process per column)\n`,
  );
  console.log(renderTable(lines, 1));
  console.log(`\n(in-flight left in the host's state after every lease came back: ${leaked})`);
}

const started = performance.now();
decisionCost();
if (!values["skip-ipc"]) await ipcCost();
if (!values["skip-sim"]) quality({ workers: WORKERS, seed: SEED, processes: PROCESSES, scrape: SCRAPE });
console.log(`\n(bench ran in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
