/**
 * @module
 * Metrics as plain data: families of samples, the one shape every part speaks — a proxy process's
 * snapshot (sent to the parent over IPC as JSON), the host's sum over its processes, the agent's own
 * gauges, and what `exposition.ts` renders for Prometheus. Histograms carry non-cumulative counts per
 * bucket (the last one past every bound), so merging is adding: counts and sums add up across
 * processes; quantiles are only ever computed from the merged buckets (by Prometheus), never averaged.
 */

export type ScalarType = "counter" | "gauge";

/** `labels`: flat name/value pairs in a fixed order (`["service", "a", "replica", "r1"]`). */
export interface ScalarSample {
  labels: string[];
  value: number;
}

/** `counts[i]`: observations ≤ bounds[i] and above bounds[i-1]; `counts[bounds.length]`: above every bound. */
export interface HistogramSample {
  labels: string[];
  counts: number[];
  sum: number;
}

export type MetricFamily =
  | { name: string; help: string; type: ScalarType; samples: ScalarSample[] }
  | { name: string; help: string; type: "histogram"; bounds: readonly number[]; samples: HistogramSample[] };

const keyOf = (labels: readonly string[]) => labels.join("\u0000");

function cloneFamily(family: MetricFamily): MetricFamily {
  if (family.type === "histogram") {
    return {
      ...family,
      samples: family.samples.map((s) => ({ labels: s.labels, counts: [...s.counts], sum: s.sum })),
    };
  }
  return { ...family, samples: family.samples.map((s) => ({ labels: s.labels, value: s.value })) };
}

/**
 * Adds every family of `from` into `into` (by name; samples by their labels). A family whose type or
 * buckets differ from the one already there is skipped rather than mixed (it cannot happen between
 * processes of one build).
 */
export function addFamilies(into: MetricFamily[], from: readonly MetricFamily[]): void {
  const byName = new Map(into.map((f) => [f.name, f]));
  for (const family of from) {
    const have = byName.get(family.name);
    if (!have) {
      const copy = cloneFamily(family);
      into.push(copy);
      byName.set(copy.name, copy);
      continue;
    }
    if (have.type !== family.type) continue;
    if (have.type === "histogram" && family.type === "histogram") {
      if (have.bounds.length !== family.bounds.length) continue;
      const samples = new Map(have.samples.map((s) => [keyOf(s.labels), s]));
      for (const s of family.samples) {
        const mine = samples.get(keyOf(s.labels));
        if (!mine) {
          const copy = { labels: s.labels, counts: [...s.counts], sum: s.sum };
          have.samples.push(copy);
          samples.set(keyOf(s.labels), copy);
          continue;
        }
        for (let i = 0; i < s.counts.length; i++) mine.counts[i] = (mine.counts[i] ?? 0) + s.counts[i]!;
        mine.sum += s.sum;
      }
    } else if (have.type !== "histogram" && family.type !== "histogram") {
      const samples = new Map(have.samples.map((s) => [keyOf(s.labels), s]));
      for (const s of family.samples) {
        const mine = samples.get(keyOf(s.labels));
        if (mine) mine.value += s.value;
        else {
          const copy = { labels: s.labels, value: s.value };
          have.samples.push(copy);
          samples.set(keyOf(s.labels), copy);
        }
      }
    }
  }
}

/** The sum of several snapshots (processes of one host), as a new list. */
export function mergeFamilies(snapshots: readonly (readonly MetricFamily[])[]): MetricFamily[] {
  const out: MetricFamily[] = [];
  for (const snapshot of snapshots) addFamilies(out, snapshot);
  return out;
}

/** The value of label `name` in a sample's flat list, or undefined. */
export function labelValue(labels: readonly string[], name: string): string | undefined {
  for (let i = 0; i < labels.length; i += 2) if (labels[i] === name) return labels[i + 1];
  return undefined;
}

/** The replica ids of each service of the document in force (a `Map` of `Set`s will do). */
export interface ServiceReplicas {
  get(service: string): { has(replica: string): boolean } | undefined;
}

/**
 * The counts of proxy processes that are gone, kept so that the host's sums never go down: a
 * counter summed over processes would drop when one process is replaced, and Prometheus would read
 * the drop as a reset (and the next scrape as a burst). Gauges are not kept (a gone process holds
 * nothing). Bounded like the live series: samples of services or replicas that left the document
 * are dropped.
 */
export class RetiredCounts {
  #families: MetricFamily[] = [];

  /** Keeps the counters and histograms of a snapshot of a process that is gone. */
  retire(snapshot: readonly MetricFamily[]): void {
    addFamilies(
      this.#families,
      snapshot.filter((f) => f.type !== "gauge"),
    );
  }

  /**
   * Keeps the samples of the services in `services` and of their replicas listed there (samples
   * without a `service`, or without a `replica`, stay with their service).
   */
  retain(services: ServiceReplicas): void {
    // Nothing retired (no process went away): nothing to look up, and no index made for it.
    if (this.#families.length === 0) return;
    const keep = (labels: readonly string[]) => {
      const service = labelValue(labels, "service");
      if (service === undefined) return true;
      const replicas = services.get(service);
      const replica = labelValue(labels, "replica");
      return replicas !== undefined && (replica === undefined || replicas.has(replica));
    };
    for (const family of this.#families) {
      if (family.type === "histogram") family.samples = family.samples.filter((s) => keep(s.labels));
      else family.samples = family.samples.filter((s) => keep(s.labels));
    }
    this.#families = this.#families.filter((f) => f.samples.length > 0);
  }

  get families(): readonly MetricFamily[] {
    return this.#families;
  }
}

/**
 * The host's series as the parent of the proxy processes keeps them: each process position's last
 * snapshot (with the pid that sent it), and what processes that are gone left (`RetiredCounts`).
 */
export class ProcessSeries<K> {
  readonly #last = new Map<K, { pid: number | undefined; families: MetricFamily[] }>();
  readonly #retired = new RetiredCounts();

  /** A process's snapshot; a position's earlier process (another pid) is retired. */
  update(key: K, pid: number | undefined, families: MetricFamily[]): void {
    const last = this.#last.get(key);
    if (last && last.pid !== pid) this.#retired.retire(last.families);
    this.#last.set(key, { pid, families });
  }

  /** The process at `key` is gone: its last counts stay in the sums. */
  gone(key: K): void {
    const last = this.#last.get(key);
    if (!last) return;
    this.#last.delete(key);
    this.#retired.retire(last.families);
  }

  /** Follows the document's services and replicas (`RetiredCounts.retain`). */
  retain(services: ServiceReplicas): void {
    this.#retired.retain(services);
  }

  /** The host's sums: gone processes, every position's last snapshot, and `extra`. */
  sum(...extra: MetricFamily[][]): MetricFamily[] {
    return mergeFamilies([this.#retired.families, ...[...this.#last.values()].map((m) => m.families), ...extra]);
  }
}
