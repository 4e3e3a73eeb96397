import { describe, expect, it } from "vitest";
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { healthDocument } from "../schema/health.ts";
import { fakeDocument, fakeService, prng, randomDelta, serviceName } from "../test/fakes/config-documents.ts";
import { deltaProblems, indexDocument } from "./config-merge.ts";
import { FakeClock } from "./engine/fake-clock.ts";
import { EngineScraper } from "./engine/scraper.ts";
import { HealthChecker } from "./health/checker.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import {
  buildRoutingTable,
  documentProblems,
  documentZones,
  EMPTY_TABLE,
  type RoutingTable,
  type TableDeps,
} from "./routes.ts";
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
      const state = indexDocument(fakeDocument(40));
      const d = deps();
      let incremental = buildRoutingTable(state.doc, EMPTY_TABLE, d);
      let whole = incremental;
      for (let step = 0; step < 30; step++) {
        const delta = randomDelta(state.doc, rng, nextName);
        expect(deltaProblems(state, delta)).toEqual([]);
        const previousDoc = state.doc;
        const undo = state.apply(delta);
        const next = state;
        expect(documentProblems(next.doc)).toEqual([]);
        // The merged document keeps the control plane's order, and is the naive merge.
        const names = next.doc.services.map((s) => s.name);
        expect(names).toEqual([...names].sort());
        const gone = new Set([...delta.removed, ...delta.services.map((s) => s.name)]);
        const naive = [...previousDoc.services.filter((s) => !gone.has(s.name)), ...delta.services];
        expect(next.doc.services).toEqual(naive.sort((a, b) => (a.name < b.name ? -1 : 1)));
        // Undone, the state is the previous document's again; redone, the merged one's.
        const merged = next.doc;
        undo();
        expect(state.doc).toBe(previousDoc);
        expect(state.version).toBe(delta.base_version);
        expect(deltaProblems(state, delta)).toEqual([]);
        state.apply(delta);
        expect(state.doc).toEqual(merged);

        // The delta changes the table's maps in place: what they held before is read from a copy.
        const before = { ...incremental, byName: new Map(incremental.byName) };
        const originsBefore = new Set(incremental.origins);
        const change = updateRoutingTable(incremental, delta, d);
        incremental = change.table;
        whole = buildRoutingTable(next.doc, whole, d);
        expect(change.goneOrigins.sort()).toEqual([...originsBefore].filter((o) => !incremental.origins.has(o)).sort());
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

/** A service with an engine to scrape (or not) and active checks (or not), drawn from `rng`. */
function decorate(service: ConfigService, rng: () => number): ConfigService {
  const engines = [null, "vllm", "sglang", "none"] as const;
  const engine = engines[Math.floor(rng() * engines.length)]!;
  const checks = rng() < 0.5;
  return {
    ...service,
    engine,
    health: checks ? healthDocument({ check: { interval: 1 + Math.floor(rng() * 3) } }, true) : null,
  };
}

describe("the host-wide services a delta changes in place", () => {
  it("keep the zones, scrape targets and health checks a whole document gives, over random change sequences", () => {
    for (const seed of [4, 5, 6]) {
      const rng = prng(seed);
      let n = 40;
      const nextName = () => serviceName(n++);
      const first = fakeDocument(40, 1, (i) => ({
        router: i % 5,
        model: i % 3 === 0 ? `m${i % 4}` : null,
        rateLimit: i % 4 === 0 ? 1 + i : null,
      }));
      const state = indexDocument({ ...first, services: first.services.map((s) => decorate(s, rng)) });
      const clock = new FakeClock();
      const never = () => new Promise<number>(() => {});
      const make = () => ({
        zones: new ZoneRegistry(100, () => 0),
        engines: new EngineScraper({ clock, fetch: never, random: rng }),
        health: new HealthChecker({ clock, fetch: never, random: rng }),
      });
      const incremental = make();
      const whole = make();
      const d = deps();
      let table = buildRoutingTable(state.doc, EMPTY_TABLE, d);
      for (const host of [incremental, whole]) {
        host.zones.retain(documentZones(state.doc));
        host.engines.retain(state.doc);
        host.health.retain(state.doc);
      }
      for (let step = 0; step < 30; step++) {
        const raw = randomDelta(state.doc, rng, nextName);
        const delta: ConfigDelta = { ...raw, services: raw.services.map((s) => decorate(s, rng)) };
        const engines = new Map(incremental.engines.replicas().map((r) => [`${r.service} ${r.id} ${r.url}`, r]));
        const checks = new Map(incremental.health.replicas().map((c) => [`${c.service} ${c.id} ${c.url}`, c]));
        state.apply(delta);
        const change = updateRoutingTable(table, delta, d);
        table = change.table;
        incremental.zones.retainChanged(change.zones, change.droppedZones);
        incremental.engines.retainChanged(delta.services, delta.removed);
        incremental.health.retainChanged(delta.services, delta.removed);
        whole.zones.retain(documentZones(state.doc));
        whole.engines.retain(state.doc);
        whole.health.retain(state.doc);

        expect(incremental.zones.ids().sort()).toEqual(whole.zones.ids().sort());
        const targets = (s: EngineScraper) => s.replicas().map((r) => `${r.service} ${r.id} ${r.url} ${r.expected}`);
        // The same replicas, each service's in its document order (a service newly scraped comes last).
        expect(targets(incremental.engines).sort()).toEqual(targets(whole.engines).sort());
        for (const s of state.doc.services) {
          const of = (e: EngineScraper) => targets(e).filter((t) => t.startsWith(`${s.name} `));
          expect(of(incremental.engines)).toEqual(of(whole.engines));
        }
        const checked = (h: HealthChecker) =>
          h.replicas().map((c) => `${c.service} ${c.id} ${c.url} ${JSON.stringify(c.settings)}`);
        expect(checked(incremental.health).sort()).toEqual(checked(whole.health).sort());
        for (const s of state.doc.services)
          expect(incremental.engines.signals(s.name)?.length ?? null).toEqual(
            whole.engines.signals(s.name)?.length ?? null,
          );
        // A replica of a service the delta did not touch keeps its scrape and its checks (same objects).
        const touched = new Set([...delta.removed, ...delta.services.map((s) => s.name)]);
        for (const r of incremental.engines.replicas())
          if (!touched.has(r.service)) expect(r).toBe(engines.get(`${r.service} ${r.id} ${r.url}`));
        for (const c of incremental.health.replicas())
          if (!touched.has(c.service)) expect(c).toBe(checks.get(`${c.service} ${c.id} ${c.url}`));
      }
      for (const host of [incremental, whole]) {
        host.engines.close();
        host.health.close();
      }
    }
  });
});
