import { describe, expect, it } from "vitest";
import type { ConfigDocument } from "../schema/config-document.ts";
import { fakeDocument, fakeService, prng, randomDelta, serviceName } from "../test/fakes/config-documents.ts";
import { deltaProblems, indexDocument, mergeDelta } from "./config-merge.ts";
import { buildRoutingTable, documentProblems, EMPTY_TABLE, type RoutingTable, type TableDeps } from "./routes.ts";
import { updateRoutingTable } from "./routes-delta.ts";
import { DEFAULT_SERVER_SETTINGS } from "./settings.ts";
import { StatsRegistry } from "./stats.ts";

const deps = (): TableDeps => ({ stats: new StatsRegistry(), health: DEFAULT_SERVER_SETTINGS.health, log: () => {} });

/** What routing reads of a table, without object identities or map orders. */
function project(t: RoutingTable) {
  const sorted = <T>(list: T[]) =>
    list
      .map((item) => [JSON.stringify(item), item] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([, item]) => item);
  const tokens = (t.tokens as unknown as { byId: Map<string, Buffer> }).byId;
  return {
    version: t.version,
    entrypointHost: t.entrypointHost,
    createdAt: t.createdAt,
    metricsPublic: t.metricsPublic,
    services: [...t.services],
    hosts: sorted([...t.byHost].map(([host, r]) => [host, r.name])),
    models: sorted([...t.byModel].map(([model, r]) => [model, r.name])),
    origins: [...t.origins].sort(),
    zones: sorted(t.zones.map((z) => ({ ...z }))),
    tokens: sorted([...tokens].map(([id, hash]) => [id, hash.toString("hex")])),
    routes: sorted(
      [...t.byName].map(([name, r]) => ({
        name,
        host: r.host,
        project: r.project,
        model: r.model,
        auth: r.auth,
        maxBodySize: r.maxBodySize,
        readTimeoutMs: r.readTimeoutMs,
        hsts: r.hsts,
        router: r.router,
        policy: r.balancer.policy.constructor.name,
        replicas: r.balancer.replicas.map((x) => [x.service, x.id, x.url]),
        rateLimits: r.rateLimits.map((rule) => ({ prefix: rule.prefix, zone: rule.zone })),
        holdTimeoutMs: r.holdTimeoutMs,
        usageInclude: r.usageInclude,
        sglangPathsOnly: r.sglangPathsOnly,
        pd: r.pd !== null,
      })),
    ),
  };
}

describe("a delta applied to a routing table", () => {
  it("gives the table a whole-document build gives, over random change sequences, and keeps untouched services' objects", () => {
    for (const seed of [1, 2, 3]) {
      const rng = prng(seed);
      let n = 40;
      const nextName = () => serviceName(n++);
      let state = indexDocument(fakeDocument(40));
      const d = deps();
      let incremental = buildRoutingTable(state.doc, EMPTY_TABLE, d);
      let whole = incremental;
      for (let step = 0; step < 30; step++) {
        const delta = randomDelta(state.doc, rng, nextName);
        expect(deltaProblems(state, delta)).toEqual([]);
        const next = mergeDelta(state, delta);
        expect(documentProblems(next.doc)).toEqual([]);
        // The merged document keeps the control plane's order.
        const names = next.doc.services.map((s) => s.name);
        expect(names).toEqual([...names].sort());

        const before = incremental;
        incremental = updateRoutingTable(before, delta, next.doc, d);
        whole = buildRoutingTable(next.doc, whole, d);
        const projected = project(incremental);
        expect(projected).toEqual(project(whole));
        if (step % 10 === 9) expect(projected).toEqual(project(buildRoutingTable(next.doc, EMPTY_TABLE, deps())));

        const touched = new Set([...delta.removed, ...delta.services.map((s) => s.name)]);
        for (const [name, route] of before.byName) {
          if (touched.has(name)) continue;
          const now = incremental.byName.get(name)!;
          expect(now).toBe(route);
          expect(now.balancer).toBe(route.balancer);
          expect(now.balancer.policy).toBe(route.balancer.policy);
        }
        // A changed service keeps its policy (and tree) while its router stays, as a whole build does.
        for (const service of delta.services) {
          const was = before.byName.get(service.name);
          if (was && JSON.stringify(was.router) === JSON.stringify(service.router))
            expect(incremental.byName.get(service.name)!.balancer.policy).toBe(was.balancer.policy);
        }
        state = next;
      }
    }
  });

  it("finds the clashes a whole document's check finds, from the indexes", () => {
    const state = indexDocument(fakeDocument(5));
    const base = { base_version: 1, version: 2, removed: [] as string[] };
    const taken = fakeService("new", { host: "s00001.gw.example.com" });
    expect(deltaProblems(state, { ...base, services: [taken] })).toEqual([
      "services[0].host: s00001.gw.example.com is already the host of service s00001",
    ]);
    // Free once its owner goes, or moves, in the same delta.
    expect(deltaProblems(state, { ...base, services: [taken], removed: ["s00001"] })).toEqual([]);
    const moved = fakeService("s00001", { host: "elsewhere.gw.example.com" });
    expect(deltaProblems(state, { ...base, services: [taken, moved] })).toEqual([]);
    // Two changed services on one host, the entrypoint's host, a service both changed and removed.
    const twin = fakeService("twin", { host: "new.gw.example.com" });
    const other = fakeService("other", { host: "new.gw.example.com" });
    expect(deltaProblems(state, { ...base, services: [twin, other] })).toEqual([
      "services[1].host: new.gw.example.com is already the host of services[0]",
    ]);
    const entry = fakeService("entry", { host: "gateway.gw.example.com" });
    expect(deltaProblems(state, { ...base, services: [entry] })).toEqual([
      "services[0].host: gateway.gw.example.com is reserved for the entrypoint",
    ]);
    expect(deltaProblems(state, { ...base, services: [fakeService("s00002")], removed: ["s00002"] })).toEqual([
      "services[0].name: s00002 is also in removed",
    ]);
    // A head moving the entrypoint onto a kept service's host.
    const { version: _v, services: _s, ...envelope } = state.doc as ConfigDocument;
    const head = { ...envelope, entrypoint: { host: "s00003.gw.example.com" } };
    expect(deltaProblems(state, { ...base, services: [], head })).toEqual([
      "entrypoint.host: s00003.gw.example.com is already the host of service s00003",
    ]);
    expect(deltaProblems(state, { ...base, base_version: 3, version: 4, services: [] })).toEqual([
      "base_version: 3 is not the version in force (1)",
    ]);
  });
});
