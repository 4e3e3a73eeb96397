/**
 * @module
 * The routing-quality section of `npm run bench:router` (`router.ts`): every policy of
 * `router-sim.ts` on each workload of `router-workloads.ts`, same seed and cost model, as tables.
 */
import { renderTable } from "./report.ts";
import { DEFAULT_COST, oracleHitRate, SIM_POLICIES, type SimRequest, simulate } from "./router-sim.ts";
import { multiTurnWorkload, sharedPrefixWorkload, tenantsWorkload } from "./router-workloads.ts";

export interface QualityOptions {
  workers: number;
  seed: number;
  /** Proxy processes of the host-state / per-process rows. */
  processes: number;
  /** Seconds between engine scrapes. */
  scrape: number;
}

function qualityTable(
  options: QualityOptions,
  title: string,
  requests: SimRequest[],
  note: string,
  processRows = true,
): void {
  const { workers: WORKERS, seed: SEED, processes: PROCESSES, scrape: SCRAPE } = options;
  const COST = { ...DEFAULT_COST, scrapeSeconds: SCRAPE };
  const lines: string[][] = [
    [
      "policy",
      "hit rate",
      "throughput tok/s",
      "TTFT p50 s",
      "TTFT p90 s",
      "TTFT p99 s",
      "max/min requests per worker",
      "queued beside a free slot",
      "vs round_robin",
    ],
  ];
  const results = new Map<string, ReturnType<typeof simulate>>();
  type Row = [string, () => ReturnType<typeof simulate>];
  const rows: Row[] = [
    ...Object.entries(SIM_POLICIES).map(
      ([name, factory]): Row => [name, () => simulate(requests, factory, WORKERS, COST, 1, "host", SEED)],
    ),
  ];
  if (processRows) {
    rows.push(
      [
        `cache_aware, ${PROCESSES} proxy processes, host state (as built)`,
        () => simulate(requests, SIM_POLICIES.cache_aware!, WORKERS, COST, PROCESSES, "host", SEED),
      ],
      [
        `cache_aware, ${PROCESSES} proxy processes, per-process state (not built: the cost of not sharing)`,
        () => simulate(requests, SIM_POLICIES.cache_aware!, WORKERS, COST, PROCESSES, "per-process", SEED),
      ],
    );
  }
  for (const [name, run] of rows) results.set(name, run());
  const rr = results.get("round_robin")!;
  for (const [name, r] of results) {
    lines.push([
      name,
      `${(r.hitRate * 100).toFixed(1)} %`,
      r.throughput.toFixed(0),
      r.ttftP50.toFixed(2),
      r.ttftP90.toFixed(2),
      r.ttftP99.toFixed(2),
      `${r.maxServed} / ${r.minServed}`,
      String(r.queuedBesideRoom),
      name === "round_robin" ? "" : `${(r.throughput / rr.throughput).toFixed(2)}× throughput`,
    ]);
  }
  lines.push(["oracle (bound)", `${(oracleHitRate(requests) * 100).toFixed(1)} %`, "", "", "", "", "", "", ""]);
  console.log(`\n## ${title}\n\n${note}\n`);
  console.log(renderTable(lines, 1));
}

export function quality(options: QualityOptions): void {
  const { workers: WORKERS, seed: SEED, scrape: SCRAPE } = options;
  const c = { ...DEFAULT_COST, scrapeSeconds: SCRAPE };
  console.log(
    `\n# Simulated fleet: ${WORKERS} workers, prefix cache ${c.cacheTokens} tokens each (LRU, 16-token blocks), ` +
      `prefill ${c.prefillPerToken * 1e6} µs/uncached token + ${c.prefillBase * 1000} ms, decode ${c.decodePerToken * 1000} ms/token, ` +
      `${c.concurrency} running per worker; engine loads scraped every ${SCRAPE} s`,
  );
  qualityTable(
    options,
    "Workload 1: generated-shared-prefix (64 groups × 16 prompts, 2048-token system prompt, 128-token question, 256-token output, all at once)",
    sharedPrefixWorkload(SEED),
    "SGLang (8 × A100, Llama-3.1-8B): cache_aware 75 % hit, 158,596 tok/s; round robin 20 % hit, 82,665 tok/s (1.9×).",
  );
  qualityTable(
    options,
    "Workload 2: multi-turn chat (256 conversations × 6 turns over 30 s, 4 shared 512-token system prompts, 96-token messages, 192-token answers)",
    multiTurnWorkload(SEED),
    "Later turns extend earlier ones (prompt + answer + new message).",
  );
  qualityTable(
    options,
    "Workload 3: many tenants, llm-d-like (48 tenants × 4,000-token contexts = 73 % of the fleet's cache, 800-token queries, 64-token answers, Poisson 85 req/s for 15 s, near saturation)",
    tenantsWorkload(SEED),
    "llm-d (8 vLLM pods, 150 tenants × 6,000 tokens, 1,200-token queries): precise prefix scheduling TTFT p90 0.54 s, 8,730 output tok/s; load-only 94.9 s, 4,429 tok/s.",
    false,
  );
}
