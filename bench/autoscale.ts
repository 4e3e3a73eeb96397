/**
 * `npm run bench:autoscale`: the real decision (`evaluateScaling`, with dstack's default delays and
 * a 60 s window) driving a simulated fleet (`autoscale-fleet.ts`) through one trace — steady, a step
 * up, a step down, a noisy steady load — once per metric, on simulated time (no wall clock). Prints
 * replicas over time per metric and per phase: when the count settled after the step, replica-hours
 * used, changes, p90 TTFT of the phase's requests, and the first scale-in after the drop.
 *
 *   npm run bench:autoscale [-- --seed 7]
 */
import { parseArgs } from "node:util";
import { type EvaluationInput, evaluateScaling } from "../durable-objects/autoscaler.ts";
import { parseServiceConfiguration } from "../schema/service.ts";
import { arrivals, Fleet, type Phase, TRACE } from "./autoscale-fleet.ts";

const { values } = parseArgs({ options: { seed: { type: "string", default: "1" } } });
const seed = Number(values.seed);

/** The count the service was deployed with (a step from nothing would bury the steady phase in backlog). */
const INITIAL = 4;
/** `scaling.ts`'s EVALUATE_INTERVAL_MS (not imported: it brings the object's storage types along). */
const EVALUATE_SECONDS = 5;
/**
 * No decision before the longest window is full: agents on a running gateway always have 300 s of
 * history, and empty windows at t = 0 would read as "no traffic".
 */
const WARM_UP_SECONDS = 300;
/** Targets for this fleet (a replica peaks at ~3.5 rps with a full batch): rps at ~70 % of it, latencies a little above idle. */
const METRICS = {
  rps: { metric: "rps", target: 2.5 },
  ttft: { metric: "ttft", target: 1 },
  itl: { metric: "itl", target: 0.05 },
  queue: { metric: "queue", target: 2 },
} as const;
type Name = keyof typeof METRICS;

interface Run {
  /** The desired count at every evaluation (every 5 s). */
  desired: number[];
  changes: number[];
  fleet: Fleet;
}

function run(name: Name, times: readonly number[], trace: readonly Phase[]): Run {
  const c = parseServiceConfiguration({ type: "service", name: "bench", replicas: "1..20", scaling: METRICS[name] });
  const total = trace.reduce((a, p) => a + p.seconds, 0);
  const fleet = new Fleet(INITIAL);
  for (const t of times) fleet.arrive(t);
  let standing: EvaluationInput["standing"] = null;
  const desired: number[] = [];
  const changes: number[] = [];
  const step = EVALUATE_SECONDS;
  for (let t = step; t <= total; t += step) {
    fleet.runUntil(t);
    if (t < WARM_UP_SECONDS) {
      desired.push(INITIAL);
      continue;
    }
    const e = evaluateScaling({
      replicas: c.replicas,
      scaling: c.scaling,
      stats: fleet.stats(),
      standing,
      registered: fleet.ready().length,
      now: t * 1000,
    });
    if (standing && e.desired !== standing.desired) changes.push(t);
    standing = { desired: e.desired, lastChangeAt: e.lastChangeAt, capacity: e.capacity };
    fleet.scaleTo(e.desired);
    desired.push(e.desired);
  }
  return { desired, changes, fleet };
}

const p90 = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.9 * s.length))]!;
};
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");

const times = arrivals(TRACE, seed);
const names = Object.keys(METRICS) as Name[];
const started = performance.now();
const runs = Object.fromEntries(names.map((n) => [n, run(n, times, TRACE)])) as Record<Name, Run>;
const spent = ((performance.now() - started) / 1000).toFixed(1);

const at = (r: Run, t: number) => r.desired[Math.max(0, Math.round(t / 5) - 1)]!;
console.log(`# Autoscaling on one trace (seed ${seed}; ${times.length} requests per metric; ${spent} s to simulate)\n`);
console.log(
  `targets: ${names.map((n) => `${n} ${METRICS[n].target}${n === "ttft" || n === "itl" ? " s" : ""}`).join(", ")}; ` +
    "window 60s, scale_up_delay 5m, scale_down_delay 10m, replicas 1..20\n",
);
console.log(`| min | phase | load rps | ${names.join(" | ")} |`);
console.log(`|--:|:--|--:|${names.map(() => "--:").join("|")}|`);
let start = 0;
for (const p of TRACE) {
  for (let t = start; t < start + p.seconds; t += 600) {
    const cells = names.map((n) => String(at(runs[n], t + 600)));
    console.log(`| ${(t + 600) / 60} | ${p.name} | ${p.rps} | ${cells.join(" | ")} |`);
  }
  start += p.seconds;
}

console.log(
  "\n| phase | metric | changes | last change after phase start | changes in its last 30 min | replica-hours | p90 TTFT s |",
);
console.log("|:--|:--|--:|--:|--:|--:|--:|");
start = 0;
for (const p of TRACE) {
  const end = start + p.seconds;
  for (const n of names) {
    const r = runs[n];
    const inPhase = r.changes.filter((t) => t > start && t <= end);
    const late = inPhase.filter((t) => t > end - 1800);
    const seconds = r.desired.slice(start / 5, end / 5).reduce((a, d) => a + d * 5, 0);
    const ttfts = r.fleet.done.filter((d) => d.arrival >= start && d.arrival < end).map((d) => d.ttft);
    const last = inPhase.length ? `${Math.round((inPhase.at(-1)! - start) / 60)} min` : "-";
    console.log(
      `| ${p.name} | ${n} | ${inPhase.length} | ${last} | ${late.length} | ${fmt(seconds / 3600)} | ${fmt(p90(ttfts), 2)} |`,
    );
  }
  start = end;
}

const dropAt = TRACE[0]!.seconds + TRACE[1]!.seconds;
console.log(
  "\n| metric | first scale-in after the drop | replica-hours, whole trace (paid, incl. starting/draining) |",
);
console.log("|:--|--:|--:|");
for (const n of names) {
  const first = runs[n].changes.find((t) => t > dropAt);
  console.log(
    `| ${n} | ${first === undefined ? "-" : `${Math.round((first - dropAt) / 60)} min`} | ${fmt(runs[n].fleet.replicaSeconds / 3600)} |`,
  );
}
