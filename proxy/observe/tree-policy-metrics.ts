/**
 * @module
 * The counters of the policies that route on a prefix tree: `cache_aware` (hits, misses, balanced,
 * evictions: `gateplane_cache_aware_*`) and `prefix_load` (hits, misses, evictions:
 * `gateplane_prefix_load_*`), summed by service — a process may hold both its own fallback policy
 * and the host's routing state. A PD service's sides (docs/pd.md) count apart, with a `role` label
 * (`prefill`, `decode`), as the host's routing state decides them.
 *
 * One family per policy rather than generic names with a `policy` label: the two count different
 * things (a cache_aware hit is a match above `cache_threshold`, and its balanced decisions are a third
 * outcome; a prefix_load hit is any held character), so one series name would invite ratios across
 * policies that mean nothing; a service has one policy at a time, so the label would only churn
 * series on a router change; and the existing cache_aware names, which dashboards use, stay as they are.
 */

import { type PdSide, pdSideKey } from "../pd/pd-side.ts";
import { CacheAware, type CacheAwareCounts } from "../policies/cache-aware.ts";
import { PrefixLoad, type PrefixLoadCounts } from "../policies/prefix-load.ts";
import type { RoutingState } from "../routing-state.ts";
import { METRICS, type MetricSpec } from "./catalog.ts";
import type { MetricFamily } from "./families.ts";

/** A tree policy's counts and the service it routes (a PD service's side: with its `role`). */
export type TreePolicyEntry = { service: string; role?: PdSide } & (
  | { policy: "cache_aware"; counts: CacheAwareCounts }
  | { policy: "prefix_load"; counts: PrefixLoadCounts }
);

/** The entry of a service's policy when it keeps tree counters; null for the others. */
export function treePolicyEntry(service: string, policy: unknown, role?: PdSide): TreePolicyEntry | null {
  const side = role ? { role } : {};
  if (policy instanceof CacheAware) return { service, ...side, policy: "cache_aware", counts: policy.counts };
  if (policy instanceof PrefixLoad) return { service, ...side, policy: "prefix_load", counts: policy.counts };
  return null;
}

/** The tree policies of the host's routing state, for the services of the table (and their PD sides). */
export function treePoliciesOf(state: RoutingState, services: readonly string[]): TreePolicyEntry[] {
  return services.flatMap((service) =>
    [
      treePolicyEntry(service, state.policy(service)),
      treePolicyEntry(service, state.policy(pdSideKey(service, "prefill")), "prefill"),
      treePolicyEntry(service, state.policy(pdSideKey(service, "decode")), "decode"),
    ].filter((e) => e !== null),
  );
}

const FAMILIES = [
  ["cache_aware", METRICS.cacheHits, "hits"],
  ["cache_aware", METRICS.cacheMisses, "misses"],
  ["cache_aware", METRICS.cacheBalanced, "balanced"],
  ["cache_aware", METRICS.cacheEvictions, "evictions"],
  ["prefix_load", METRICS.prefixLoadHits, "hits"],
  ["prefix_load", METRICS.prefixLoadMisses, "misses"],
  ["prefix_load", METRICS.prefixLoadEvictions, "evictions"],
] as const satisfies readonly (readonly [TreePolicyEntry["policy"], MetricSpec, string])[];

/** Every tree-policy family (empty ones included, as the registry's other families). */
export function treePolicyFamilies(entries: readonly TreePolicyEntry[]): MetricFamily[] {
  return FAMILIES.map(([policy, spec, key]) => {
    const sums = new Map<string, { labels: string[]; value: number }>();
    for (const e of entries) {
      if (e.policy !== policy) continue;
      const value = (e.counts as unknown as Record<string, number>)[key]!;
      const labels = e.role ? ["service", e.service, "role", e.role] : ["service", e.service];
      const id = labels.join("\u0000");
      const sum = sums.get(id);
      if (sum) sum.value += value;
      else sums.set(id, { labels, value });
    }
    return { name: spec.name, help: spec.help, type: "counter", samples: [...sums.values()] };
  });
}
