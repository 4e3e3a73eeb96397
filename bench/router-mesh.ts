/**
 * @module
 * `npm run bench:mesh`: routing quality with gateway replicas behind round-robin DNS
 * (`router-sim.ts`'s `GatewayReplicas`), per tree policy and workload: one gateway; N gateways with
 * independent state; N gateways sharing through the mesh (`proxy/mesh/`) at its real interval and
 * relay delay, and at a slower one; each with and without the tree policies' agreement on new
 * prefixes (`proxy/policies/policy.ts`'s `Agreement`), the agreement without the digests' in-flight
 * counts (each gateway's load then its own plus engine scrapes), and the agreement alone. The criterion (issue 15): the shared hit rate ≥ 95 % of one
 * gateway's.
 *
 * Flags: --gateways 3, --workers 8, --seed 1, --scrape 2, --interval 0.5 (s between digests),
 * --delay 0.05 (s of relay: agent → Durable Object → agent).
 */
import { parseArgs } from "node:util";
import { renderTable } from "./report.ts";
import { DEFAULT_COST, type GatewayReplicas, SIM_POLICIES, type SimRequest, simulate } from "./router-sim.ts";
import { multiTurnWorkload, sharedPrefixWorkload, tenantsWorkload } from "./router-workloads.ts";

const { values } = parseArgs({
  options: {
    gateways: { type: "string", default: "3" },
    workers: { type: "string", default: "8" },
    seed: { type: "string", default: "1" },
    scrape: { type: "string", default: "2" },
    interval: { type: "string", default: "0.5" },
    delay: { type: "string", default: "0.05" },
  },
});
const GATEWAYS = Number(values.gateways);
const WORKERS = Number(values.workers);
const SEED = Number(values.seed);
const INTERVAL = Number(values.interval);
const DELAY = Number(values.delay);
const COST = { ...DEFAULT_COST, scrapeSeconds: Number(values.scrape) };

const workloads: [string, () => SimRequest[]][] = [
  ["generated-shared-prefix", () => sharedPrefixWorkload(SEED)],
  ["multi-turn chat", () => multiTurnWorkload(SEED)],
  ["many tenants (llm-d-like)", () => tenantsWorkload(SEED)],
];
const policies = ["cache_aware", "prefix_load"];
const modes: [string, GatewayReplicas | null][] = [
  ["1 gateway", null],
  [`${GATEWAYS} gateways, independent state`, { count: GATEWAYS, share: null }],
  [
    `${GATEWAYS} gateways, mesh (digest every ${INTERVAL} s + ${DELAY} s relay)`,
    { count: GATEWAYS, share: { interval: INTERVAL, delay: DELAY } },
  ],
  [
    `${GATEWAYS} gateways, mesh (digest every ${INTERVAL * 4} s + ${DELAY} s relay)`,
    { count: GATEWAYS, share: { interval: INTERVAL * 4, delay: DELAY } },
  ],
  [
    `${GATEWAYS} gateways, mesh ${INTERVAL} s + agreement on new prefixes`,
    { count: GATEWAYS, share: { interval: INTERVAL, delay: DELAY }, agree: true },
  ],
  [
    `${GATEWAYS} gateways, mesh ${INTERVAL * 4} s + agreement on new prefixes`,
    { count: GATEWAYS, share: { interval: INTERVAL * 4, delay: DELAY }, agree: true },
  ],
  [
    `${GATEWAYS} gateways, mesh ${INTERVAL} s + agreement, digests without in-flight counts`,
    { count: GATEWAYS, share: { interval: INTERVAL, delay: DELAY, loads: false }, agree: true },
  ],
  [`${GATEWAYS} gateways, no mesh, agreement only`, { count: GATEWAYS, share: null, agree: true }],
];

const started = performance.now();
console.log(
  `# ${GATEWAYS} gateway replicas behind round-robin DNS (each request to the next gateway), ${WORKERS} workers, engine scrapes every ${COST.scrapeSeconds} s\n`,
);
const lines: string[][] = [
  [
    "workload",
    "policy",
    "gateways",
    "hit rate",
    "of 1 gateway's",
    "throughput tok/s",
    "TTFT p90 s",
    "served max/min per worker",
  ],
];
for (const [workload, make] of workloads) {
  for (const policy of policies) {
    let one = 0;
    for (const [mode, gateways] of modes) {
      const r = simulate(make(), SIM_POLICIES[policy]!, WORKERS, COST, 1, "host", SEED, gateways);
      if (gateways === null) one = r.hitRate;
      lines.push([
        workload,
        policy,
        mode,
        `${(r.hitRate * 100).toFixed(1)} %`,
        `${((r.hitRate / one) * 100).toFixed(1)} %`,
        r.throughput.toFixed(0),
        r.ttftP90.toFixed(2),
        `${r.maxServed}/${r.minServed}`,
      ]);
    }
  }
}
console.log(renderTable(lines, 3));
console.log(`\n(bench ran in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
