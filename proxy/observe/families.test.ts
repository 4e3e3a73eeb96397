import { describe, expect, it } from "vitest";
import { addFamilies, type MetricFamily, mergeFamilies, ProcessSeries, RetiredCounts } from "./families.ts";

const counter = (value: number, service = "a"): MetricFamily => ({
  name: "x_total",
  help: "x",
  type: "counter",
  samples: [{ labels: ["service", service], value }],
});
const histogram = (counts: number[], sum: number): MetricFamily => ({
  name: "h_seconds",
  help: "h",
  type: "histogram",
  bounds: [0.1, 1],
  samples: [{ labels: ["service", "a"], counts, sum }],
});
const gauge = (value: number): MetricFamily => ({
  name: "g",
  help: "g",
  type: "gauge",
  samples: [{ labels: [], value }],
});

describe("metric families", () => {
  it("add up by name and labels: counters, gauges, and histograms bucket by bucket", () => {
    const merged = mergeFamilies([
      [counter(1), histogram([1, 0, 2], 3.5), gauge(2)],
      [counter(4), counter(7, "b"), histogram([0, 5, 0], 2), gauge(1)],
    ]);
    expect(merged).toEqual([
      {
        name: "x_total",
        help: "x",
        type: "counter",
        samples: [
          { labels: ["service", "a"], value: 5 },
          { labels: ["service", "b"], value: 7 },
        ],
      },
      {
        name: "h_seconds",
        help: "h",
        type: "histogram",
        bounds: [0.1, 1],
        samples: [{ labels: ["service", "a"], counts: [1, 5, 2], sum: 5.5 }],
      },
      { name: "g", help: "g", type: "gauge", samples: [{ labels: [], value: 3 }] },
    ]);
  });

  it("never change the snapshots they add", () => {
    const a = [counter(1)];
    const into: MetricFamily[] = [];
    addFamilies(into, a);
    addFamilies(into, a);
    expect(a[0]!.samples[0]).toEqual({ labels: ["service", "a"], value: 1 });
    expect(into[0]!.samples[0]).toEqual({ labels: ["service", "a"], value: 2 });
  });

  it("keep the counts of gone processes (not their gauges) for the services still configured", () => {
    const retired = new RetiredCounts();
    retired.retire([counter(3), counter(2, "b"), gauge(9)]);
    retired.retire([counter(1)]);
    expect(mergeFamilies([retired.families])).toEqual([
      {
        name: "x_total",
        help: "x",
        type: "counter",
        samples: [
          { labels: ["service", "a"], value: 4 },
          { labels: ["service", "b"], value: 2 },
        ],
      },
    ]);
    retired.retain(new Map([["a", new Set<string>()]]));
    expect(retired.families[0]!.samples).toEqual([{ labels: ["service", "a"], value: 4 }]);
    // A replica that left takes its samples along.
    retired.retire([
      {
        name: "x_total",
        help: "x",
        type: "counter",
        samples: [{ labels: ["service", "a", "replica", "r1"], value: 1 }],
      },
    ]);
    retired.retain(new Map([["a", new Set(["r2"])]]));
    expect(retired.families[0]!.samples).toEqual([{ labels: ["service", "a"], value: 4 }]);
    retired.retain(new Map());
    expect(retired.families).toEqual([]);
  });

  it("look nothing up while no process is gone (a delta builds no index of the document for them)", () => {
    const retired = new RetiredCounts();
    const lookups: string[] = [];
    const services = {
      get: (service: string) => {
        lookups.push(service);
        return undefined;
      },
    };
    retired.retain(services);
    expect(lookups).toEqual([]);
    retired.retire([counter(3)]);
    retired.retain(services);
    expect(lookups).toEqual(["a"]);
    expect(retired.families).toEqual([]);
  });

  it("sum a host's processes: the last snapshot of each position, and what replaced or gone ones left", () => {
    const host = new ProcessSeries<number>();
    host.update(0, 100, [counter(5), gauge(1)]);
    host.update(1, 200, [counter(2), gauge(1)]);
    host.update(0, 100, [counter(6), gauge(2)]);
    expect(mergeFamilies([host.sum()]).map((f) => f.samples[0]!)).toEqual([
      { labels: ["service", "a"], value: 8 },
      { labels: [], value: 3 },
    ]);
    // Position 0's process was replaced (pid 101 starts from zero); position 1's died.
    host.update(0, 101, [counter(1), gauge(0)]);
    host.gone(1);
    expect(host.sum(counterOf(3, "b")).map((f) => f.samples)).toEqual([
      [
        { labels: ["service", "a"], value: 9 },
        { labels: ["service", "b"], value: 3 },
      ],
      [{ labels: [], value: 0 }],
    ]);
  });
});

function counterOf(value: number, service: string): MetricFamily[] {
  return [counter(value, service)];
}
