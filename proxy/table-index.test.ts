import { describe, expect, it } from "vitest";
import { fakeDocument, fakeService } from "../test/fakes/config-documents.ts";
import { buildRoute, buildRoutingTable, EMPTY_TABLE, type TableDeps } from "./routes.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";
import { StatsRegistry } from "./stats.ts";
import { TableIndex } from "./table-index.ts";

const deps = (): TableDeps => ({ stats: new StatsRegistry(), health: DEFAULT_SERVER_SETTINGS.health, log: () => {} });

describe("a routing table's index", () => {
  it("counts each origin once per replica, and tells which origins the last replica took away", () => {
    const d = deps();
    const index = new TableIndex();
    const a = buildRoute(fakeService("a", { replicas: 2 }), undefined, d);
    // Same name, so the same loopback address: the same origins as `a`'s first two replicas.
    const a2 = buildRoute(fakeService("a", { replicas: 3 }), undefined, d);
    index.add(a);
    index.add(a2);
    expect(index.origins.size).toBe(3);
    const gone: string[] = [];
    index.remove(a2, gone);
    expect(gone).toEqual([a2.balancer.replicas[2]!.origin]);
    index.remove(a, gone);
    expect(gone).toHaveLength(3);
    expect(index.origins.size).toBe(0);
  });

  it("names a model's owner: the first service declaring it, by name, as a whole document does", () => {
    const d = deps();
    const index = new TableIndex();
    const routes = ["c", "a", "b"].map((name) => buildRoute(fakeService(name, { model: "m" }), undefined, d));
    for (const route of routes) index.add(route);
    expect(index.modelOwner("m")).toBe("a");
    index.remove(routes[1]!, []);
    expect(index.modelOwner("m")).toBe("b");
    expect(index.modelOwner("none")).toBeUndefined();
    const table = buildRoutingTable(
      fakeDocument(6, 1, (i) => ({ model: i % 2 ? "odd" : "even" })),
      EMPTY_TABLE,
      d,
    );
    expect(table.byModel.get("odd")!.name).toBe(table.index.modelOwner("odd"));
    expect(table.byModel.get("even")!.name).toBe(table.index.modelOwner("even"));
  });
});
