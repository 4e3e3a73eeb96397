/**
 * @module
 * `npm run bench:pd`: prefill/decode disaggregation against co-located workers at equal worker counts
 * on the simulated fleet (`router-sim-pd.ts`; docs/pd.md, "PD vs co-located: figures"): TTFT, ITL,
 * throughput and prefix-cache hit rate on the shared-prefix and multi-turn workloads of
 * `npm run bench:router`, and on long unshared prompts with long answers (where PD is meant to pay).
 *
 * Flags: --workers 8 (N; the PD rows split it), --splits 1:7,2:6,4:4 (prefill:decode, each summing to
 * N), --seed 1, --scrape 2 (seconds between engine scrapes), --transfer-gbs 23.75 (KV transfer, GB/s
 * per prefill worker), --transfer-ms 2 (fixed latency per transfer), --only shared|multi|long.
 */
import { parseArgs } from "node:util";
import type { RouterConfig, RouterPolicy } from "../schema/router.ts";
import { renderTable } from "./report.ts";
import type { SimRequest } from "./router-sim.ts";
import { type Fleet, simulatePd } from "./router-sim-pd.ts";
import { DEFAULT_ENGINE, KV_BYTES_PER_TOKEN, kvTransfer } from "./router-sim-pd-cost.ts";
import { longPromptWorkload, multiTurnWorkload, sharedPrefixWorkload } from "./router-workloads.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "8" },
    splits: { type: "string", default: "1:7,2:6,4:4" },
    seed: { type: "string", default: "1" },
    scrape: { type: "string", default: "2" },
    "transfer-gbs": { type: "string", default: "23.75" },
    "transfer-ms": { type: "string", default: "2" },
    only: { type: "string" },
  },
});
const fail = (message: string): never => {
  console.error(message);
  process.exit(2);
};
const number = (name: string, raw: string, min: number, integer: boolean): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isSafeInteger(n)))
    fail(`--${name}: expected ${integer ? "a whole number" : "a number"} ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
};
const WORKERS = number("workers", values.workers, 2, true);
const SEED = number("seed", values.seed, 1, true);
const SCRAPE = number("scrape", values.scrape, 0, false);
const GBS = number("transfer-gbs", values["transfer-gbs"], 0.001, false);
const BASE_MS = number("transfer-ms", values["transfer-ms"], 0, false);
const SPLITS = values.splits.split(",").map((s) => {
  const [p, d, extra] = s.split(":").map((x) => Number(x));
  if (
    extra !== undefined ||
    !Number.isSafeInteger(p) ||
    !Number.isSafeInteger(d) ||
    p! < 1 ||
    d! < 1 ||
    p! + d! !== WORKERS
  )
    fail(
      `--splits: expected prefill:decode pairs of whole numbers ≥ 1 summing to --workers ${WORKERS}, got ${JSON.stringify(s)}`,
    );
  return [p!, d!] as const;
});
const WORKLOADS = ["shared", "multi", "long"];
if (values.only !== undefined && !WORKLOADS.includes(values.only))
  fail(`--only: expected one of ${WORKLOADS.join(", ")}, got ${JSON.stringify(values.only)}`);

const COST = { ...DEFAULT_ENGINE, scrapeSeconds: SCRAPE };
const TRANSFER = kvTransfer(GBS, BASE_MS);

const pdRouter = (prefill: RouterPolicy, decode: RouterPolicy): RouterConfig => ({
  type: "sglang",
  policy: prefill,
  pd_disaggregation: true,
  prefill_policy: prefill,
  decode_policy: decode,
});

/** The rows of each table: co-located with both prefix-aware policies, then each split with two PD routers. */
function fleets(): [string, string, Fleet][] {
  const rows: [string, string, Fleet][] = [
    [`co-located ×${WORKERS}`, "cache_aware", { kind: "colocated", workers: WORKERS, policy: "cache_aware" }],
    [`co-located ×${WORKERS}`, "prefix_load", { kind: "colocated", workers: WORKERS, policy: "prefix_load" }],
  ];
  for (const [p, d] of SPLITS) {
    const label = `PD ${p}P + ${d}D`;
    rows.push([
      label,
      "cache_aware / power_of_two",
      { kind: "pd", prefill: p, decode: d, router: pdRouter("cache_aware", "power_of_two") },
    ]);
    rows.push([
      label,
      "prefix_load / least_load",
      { kind: "pd", prefill: p, decode: d, router: pdRouter("prefix_load", "least_load") },
    ]);
  }
  return rows;
}

function table(title: string, requests: SimRequest[]): void {
  const lines: string[][] = [
    [
      "fleet",
      "policy (prefill / decode)",
      "hit rate",
      "TTFT p50 / p90 s",
      "ITL p50 / p90 / p99 ms",
      "ITL > 50 ms",
      "throughput tok/s",
      "output tok/s",
      "handoff ms",
      "prefill pool busy",
    ],
  ];
  const s = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(x >= 1 ? 2 : 3));
  const ms = (x: number) => (x * 1000).toFixed(1);
  for (const [label, policy, fleet] of fleets()) {
    const r = simulatePd(requests, fleet, COST, TRANSFER, SEED);
    lines.push([
      label,
      policy,
      `${(r.hitRate * 100).toFixed(1)} %`,
      `${s(r.ttft.p50)} / ${s(r.ttft.p90)}`,
      `${ms(r.itl.p50)} / ${ms(r.itl.p90)} / ${ms(r.itl.p99)}`,
      `${(r.itlOver50ms * 100).toFixed(2)} %`,
      r.throughput.toFixed(0),
      r.outputThroughput.toFixed(0),
      fleet.kind === "pd" ? ms(r.handoffMean) : "",
      fleet.kind === "pd" ? `${(r.busy.prefill * 100).toFixed(0)} %` : "",
    ]);
  }
  console.log(`\n## ${title}\n`);
  console.log(renderTable(lines, 2));
}

const c = COST;
console.log(
  `# PD vs co-located, ${WORKERS} workers, seed ${SEED}: engine step ${c.stepBase * 1000} ms + ${c.decodePerSeq * 1000} ms per running decode ` +
    `+ ${c.prefillPerToken * 1e6} µs per uncached prompt token (chunks of ${c.chunkTokens}); ${c.maxRunning} running and ` +
    `${c.kvTokens} tokens of KV per worker (the prefix cache: all of it but what running outputs take); ` +
    `KV transfer ${KV_BYTES_PER_TOKEN / 1024} KiB/token at ${GBS} GB/s per prefill worker + ${BASE_MS} ms; scrapes every ${SCRAPE} s`,
);
const only = values.only;
if (!only || only === "shared")
  table(
    "generated-shared-prefix (64 groups × 16, 2048-token system prompts, 128-token questions, 256-token answers, all at t = 0)",
    sharedPrefixWorkload(SEED),
  );
if (!only || only === "multi")
  table(
    "multi-turn chat (256 conversations × 6 turns over 30 s, 4 shared 512-token system prompts, 96-token messages, 192-token answers)",
    multiTurnWorkload(SEED),
  );
if (!only || only === "long")
  table(
    "long prompts, long answers (4096-token unshared prompts, 512-token answers, Poisson 8 req/s for 30 s)",
    longPromptWorkload(SEED),
  );
