import { describe, expect, it } from "vitest";
import { configDocument } from "../../test/support/config-builder.ts";
import { DEFAULT_HEALTH_POLICY } from "../balancer.ts";
import { buildRoutingTable, EMPTY_TABLE } from "../routes.ts";
import { StatsRegistry } from "../stats.ts";
import type { ActiveVerdict } from "./checker.ts";
import { setVerdicts, VerdictMemory } from "./table-health.ts";

const deps = { stats: new StatsRegistry(), health: DEFAULT_HEALTH_POLICY, log: () => {} };
const table = (urls: string[]) =>
  buildRoutingTable(configDocument(1, [{ name: "alpha", replicas: urls }]), EMPTY_TABLE, deps);
const verdict = (url: string, state: ActiveVerdict["verdict"]): ActiveVerdict => ({
  service: "alpha",
  id: `alpha-${url.slice(-1)}`,
  url,
  verdict: state,
  last: state === "unhealthy" ? "fail" : "pass",
  error: null,
});

describe("the host's health news on a process's table", () => {
  it("sets a verdict on its replica's balancer, and one for a replica the table lacks on nothing", () => {
    const t = table(["http://127.0.0.1:1"]);
    const id = t.byName.get("alpha")!.balancer.replicas[0]!.id;
    setVerdicts(
      t,
      [{ ...verdict("http://127.0.0.1:1", "unhealthy"), id }, verdict("http://127.0.0.1:9", "unhealthy")],
      0,
    );
    expect(t.byName.get("alpha")!.balancer.replicas[0]!.active).toBe("unhealthy");
  });

  it("remembers verdicts for later tables, and forgets those of replicas gone once they outnumber the table's 4 to 1", () => {
    const t = table(["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    const [a, b] = t.byName.get("alpha")!.balancer.replicas;
    const memory = new VerdictMemory();
    memory.remember([{ ...verdict(a!.url, "unhealthy"), id: a!.id }], t);
    const gone = Array.from({ length: 7 }, (_, i) => verdict(`http://127.0.0.1:${100 + i}`, "healthy"));
    memory.remember(gone, t);
    expect(memory.size).toBe(8); // not more than 4 × 2 replicas yet
    memory.remember([{ ...verdict(b!.url, "healthy"), id: b!.id }], t);
    // 9 > 8: the verdicts of replicas the table does not have are forgotten, its own kept.
    expect(memory.size).toBe(2);
    expect([...memory.of([{ name: "alpha" }])].map((v) => v.url).sort()).toEqual([a!.url, b!.url].sort());
    expect([...memory.all()]).toHaveLength(2);
  });
});
