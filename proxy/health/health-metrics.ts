/**
 * @module
 * Replica health as metric families (`observe/catalog.ts`, docs/metrics.md). Each proxy process
 * exports its own view as state sets (`processHealthFamilies`: 1 per process for the state it sees);
 * the host's families add those up, and `hostHealthFamilies` turns the sums into the worst state per
 * replica (`gateplane_replica_health`), SMG's 0/1/2 breaker gauge (`gateplane_replica_circuit_state`)
 * and the host's active-check counters.
 */
import {
  CIRCUIT_SEVERITY,
  type CircuitState,
  HEALTH_SEVERITY,
  REPLICA_HEALTH_STATES,
  type ReplicaHealthState,
} from "../../schema/health.ts";
import type { Balancer } from "../balancer.ts";
import { METRICS, type MetricSpec } from "../observe/catalog.ts";
import { labelValue, type MetricFamily, type ScalarSample } from "../observe/families.ts";
import { CHECK_RESULTS, type HealthChecker } from "./checker.ts";

/** The processes' breaker states before the host turns them into one gauge (never exported). */
const CIRCUIT_PROCESSES = "gateplane_replica_circuit_processes";
const SMG_CIRCUIT: Record<CircuitState, number> = { closed: 0, open: 1, half_open: 2 };

const scalar = (spec: MetricSpec, samples: ScalarSample[]): MetricFamily => ({
  name: spec.name,
  help: spec.help,
  type: spec.type as "gauge" | "counter",
  samples,
});

/** One process's view: its balancers' replicas. */
export function processHealthFamilies(balancers: Iterable<Balancer>, now: number): MetricFamily[] {
  const states: ScalarSample[] = [];
  const circuits: ScalarSample[] = [];
  const opens: ScalarSample[] = [];
  for (const balancer of balancers) {
    for (const r of balancer.replicas) {
      const labels = ["service", r.service, "replica", r.id];
      states.push({ labels: [...labels, "state", balancer.state(r, now)], value: 1 });
      circuits.push({ labels: [...labels, "state", r.breaker?.state(now) ?? "closed"], value: 1 });
      if (r.breaker) opens.push({ labels, value: r.breaker.opens });
    }
  }
  return [
    scalar(METRICS.replicaHealth, states),
    { name: CIRCUIT_PROCESSES, help: "", type: "gauge", samples: circuits },
    scalar(METRICS.replicaCircuitOpens, opens),
  ];
}

/** The host's families from the processes' sums (in place of theirs), with the checker's counters. */
export function hostHealthFamilies(summed: MetricFamily[], checker: HealthChecker | null): MetricFamily[] {
  const worst = new Map<string, { labels: string[]; state: ReplicaHealthState }>();
  const circuit = new Map<string, { labels: string[]; state: CircuitState }>();
  const out: MetricFamily[] = [];
  for (const family of summed) {
    if (
      family.type === "histogram" ||
      (family.name !== METRICS.replicaHealth.name && family.name !== CIRCUIT_PROCESSES)
    ) {
      out.push(family);
      continue;
    }
    for (const s of family.samples) {
      if (s.value <= 0) continue;
      const labels = ["service", labelValue(s.labels, "service")!, "replica", labelValue(s.labels, "replica")!];
      const key = labels.join("\u0000");
      if (family.name === CIRCUIT_PROCESSES) {
        const state = labelValue(s.labels, "state") as CircuitState;
        const seen = circuit.get(key);
        if (!seen || CIRCUIT_SEVERITY[state] > CIRCUIT_SEVERITY[seen.state]) circuit.set(key, { labels, state });
      } else {
        const state = labelValue(s.labels, "state") as ReplicaHealthState;
        const seen = worst.get(key);
        if (!seen || HEALTH_SEVERITY[state] > HEALTH_SEVERITY[seen.state]) worst.set(key, { labels, state });
      }
    }
  }
  const health: ScalarSample[] = [];
  for (const { labels, state } of worst.values())
    for (const s of REPLICA_HEALTH_STATES) health.push({ labels: [...labels, "state", s], value: s === state ? 1 : 0 });
  const circuits: ScalarSample[] = [...circuit.values()].map(({ labels, state }) => ({
    labels,
    value: SMG_CIRCUIT[state],
  }));
  const checks: ScalarSample[] = [];
  for (const c of checker?.replicas() ?? [])
    for (const result of CHECK_RESULTS)
      if (c.results[result] > 0)
        checks.push({ labels: ["service", c.service, "replica", c.id, "result", result], value: c.results[result] });
  out.push(scalar(METRICS.replicaHealth, health), scalar(METRICS.replicaCircuit, circuits));
  out.push(scalar(METRICS.healthChecks, checks));
  return out;
}
