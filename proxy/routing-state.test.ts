/**
 * The host's routing state and the worker's gate to it, without processes: leases released exactly
 * once, a dead owner's loads given back, state kept across documents, eligibility, the text cap,
 * and a worker's fallback when the parent is silent or late.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RouterConfig } from "../schema/router.ts";
import { configDocument, type ServiceSpec } from "../test/support/config-builder.ts";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "./balancer.ts";
import { Mesh } from "./mesh/mesh.ts";
import { pdSideKey } from "./pd/pd-side.ts";
import type { CacheAware } from "./policies/cache-aware.ts";
import { RoundRobin } from "./policies/round-robin.ts";
import { capRoutingText, ROUTING_TEXT_CAP } from "./policies/routing-text.ts";
import { answerRoute, IpcRoutingGate, type RouteAsk, type RoutedService } from "./routing-gate.ts";
import { type HostReplica, RoutingState } from "./routing-state.ts";

const RR: RouterConfig = { type: "sglang", policy: "round_robin" };
const doc = (services: ServiceSpec[]) => configDocument(1, services);
const three = (router: RouterConfig | null = RR): ServiceSpec => ({
  name: "llm",
  replicas: ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"],
  router,
});

describe("RoutingState", () => {
  it("holds a load per decision until its lease comes back, exactly once", () => {
    const state = new RoutingState();
    state.retain(doc([three()]));
    const a = state.decide(1, "llm", "", null, 0)!;
    const b = state.decide(2, "llm", "", null, 0)!;
    expect([a.id, b.id]).toEqual(["llm-0", "llm-1"]);
    expect(state.loads().map((l) => l.inFlight)).toEqual([1, 1, 0]);
    state.release(1, a.lease);
    state.release(1, a.lease);
    state.release(1, b.lease); // another owner's lease: ignored
    expect(state.loads().map((l) => l.inFlight)).toEqual([0, 1, 0]);
    state.forget(2);
    expect(state.loads().map((l) => l.inFlight)).toEqual([0, 0, 0]);
  });

  it("keeps counters, loads and trees across documents while the router and replica stay", () => {
    const state = new RoutingState();
    state.retain(doc([three()]));
    const held = state.decide(1, "llm", "", null, 0)!;
    state.decide(1, "llm", "", null, 0);
    // Same router, replica 2 gone: the counter goes on (2 % 2 = 0) and replica 0 keeps its load.
    state.retain(doc([{ ...three(), replicas: three().replicas.slice(0, 2) }]));
    expect(state.decide(1, "llm", "", null, 0)!.id).toBe("llm-0");
    expect(state.loads().map((l) => l.inFlight)).toEqual([2, 1]);
    state.release(1, held.lease);
    expect(state.loads()[0]!.inFlight).toBe(1);
    // A new router starts a new policy.
    state.retain(doc([three({ type: "sglang", policy: "cache_aware" })]));
    expect(state.policy("llm")!.name).toBe("cache_aware");
  });

  it("decides a PD service's sides apart, each among its role's replicas with its policy, on one load per replica", () => {
    const state = new RoutingState();
    const pd: ServiceSpec = {
      name: "pd",
      router: {
        type: "sglang",
        policy: "round_robin",
        pd_disaggregation: true,
        prefill_policy: "cache_aware",
        decode_policy: "random",
      },
      replicas: [
        { id: "p1", url: "http://10.0.0.1:8000", role: "prefill", bootstrap_port: 8998 },
        { id: "p2", url: "http://10.0.0.2:8000", role: "prefill", bootstrap_port: 8998 },
        { id: "d1", url: "http://10.0.0.3:8000", role: "decode" },
      ],
    };
    state.retain(doc([pd]));
    expect(state.policy(pdSideKey("pd", "prefill"))!.name).toBe("cache_aware");
    // random keeps nothing host-wide: each process decides its decode side itself.
    expect(state.policy(pdSideKey("pd", "decode"))).toBeUndefined();
    const first = state.decide(1, pdSideKey("pd", "prefill"), "a shared prefix, then more", null, 0)!;
    expect(["p1", "p2"]).toContain(first.id);
    // The service's own state (other paths) sees the same replica's load: one per replica.
    const own = state.decide(1, "pd", "", null, 0)!;
    const held = (id: string) => (first.id === id ? 1 : 0) + (own.id === id ? 1 : 0);
    expect(state.loads().map((l) => [l.id, l.role, l.inFlight])).toEqual([
      ["p1", "prefill", held("p1")],
      ["p2", "prefill", held("p2")],
      ["d1", "decode", held("d1")],
    ]);
    // The prefix stays with its prefill replica; a new document with the same router keeps the tree.
    state.retain(doc([pd]));
    expect(state.decide(1, pdSideKey("pd", "prefill"), "a shared prefix, then other words", null, 0)!.id).toBe(
      first.id,
    );
    state.forget(1);
    expect(state.loads().every((l) => l.inFlight === 0)).toBe(true);
  });

  it("follows a delta: a changed PD service keeps its sides' trees and loads, a removed one drops all its states, others stay", () => {
    const state = new RoutingState();
    const router: RouterConfig = {
      type: "sglang",
      policy: "round_robin",
      pd_disaggregation: true,
      prefill_policy: "cache_aware",
      decode_policy: "power_of_two",
    };
    const pd = (decodes: number): ServiceSpec => ({
      name: "pd",
      router,
      replicas: [
        { id: "p1", url: "http://10.0.0.1:8000", role: "prefill", bootstrap_port: 8998 },
        { id: "p2", url: "http://10.0.0.2:8000", role: "prefill", bootstrap_port: 8998 },
        ...Array.from({ length: decodes }, (_, i) => ({
          id: `d${i}`,
          url: `http://10.0.1.${i}:8000`,
          role: "decode" as const,
        })),
      ],
    });
    state.retain(doc([pd(1), three()]));
    const other = state.policy("llm");
    const prefillTree = state.policy(pdSideKey("pd", "prefill"));
    const first = state.decide(1, pdSideKey("pd", "prefill"), "a shared prefix, then more", null, 0)!;
    // A decode replica added to the PD service: its prefill tree, the held load and the other service stay.
    const [changed] = doc([pd(2)]).services;
    state.retainChanged([changed!], []);
    expect(state.policy("llm")).toBe(other);
    expect(state.policy(pdSideKey("pd", "prefill"))).toBe(prefillTree);
    expect(state.loads().find((l) => l.id === first.id)!.inFlight).toBe(1);
    expect(
      state
        .loads()
        .filter((l) => l.role === "decode")
        .map((l) => l.id),
    ).toEqual(["d0", "d1"]);
    expect(state.decide(1, pdSideKey("pd", "prefill"), "a shared prefix, then other words", null, 0)!.id).toBe(
      first.id,
    );
    state.retainChanged([], ["pd"]);
    expect(state.policy("pd")).toBeUndefined();
    expect(state.policy(pdSideKey("pd", "prefill"))).toBeUndefined();
    expect(state.policy(pdSideKey("pd", "decode"))).toBeUndefined();
    expect(state.loads().every((l) => l.service === "llm")).toBe(true);
  });

  it("has the mesh follow a delta's services alone: tree services it changes or removes, the others untouched", () => {
    const state = new RoutingState();
    const mesh = new Mesh();
    const tree: RouterConfig = { type: "sglang", policy: "cache_aware" };
    const named = (name: string, router: RouterConfig | null): ServiceSpec => ({ ...three(router), name });
    state.setMesh(mesh);
    state.retain(doc([named("a", tree), named("b", tree), named("c", RR)]));
    expect(mesh.treeServices().sort()).toEqual(["a", "b"]);
    // b leaves the tree policies, c joins them, a is removed: as a whole document of b and c would give.
    state.retainChanged(doc([named("b", RR), named("c", tree)]).services, ["a"]);
    expect(mesh.treeServices().sort()).toEqual(["c"]);
    state.retainChanged(doc([named("d", tree)]).services, []);
    expect(mesh.treeServices().sort()).toEqual(["c", "d"]);
  });

  it("decides among the eligible ids only, and leaves random and router-less services to the workers", () => {
    const state = new RoutingState();
    state.retain(
      doc([
        three(),
        { name: "plain", replicas: ["http://10.0.0.9:1"] },
        { ...three({ type: "sglang", policy: "random" }), name: "rnd" },
      ]),
    );
    expect(state.decide(1, "llm", "", ["llm-2"], 0)!.id).toBe("llm-2");
    expect(state.decide(1, "llm", "", ["gone"], 0)).toBeNull();
    expect(state.decide(1, "plain", "", null, 0)).toBeNull();
    expect(state.decide(1, "rnd", "", null, 0)).toBeNull();
    expect(state.loads().map((l) => l.service)).toEqual(["llm", "llm", "llm"]);
  });

  it("learns cache_aware prefixes from every owner in one tree", () => {
    const state = new RoutingState();
    state.retain(doc([three({ type: "sglang", policy: "cache_aware" })]));
    const text = `system prompt ${"x".repeat(200)}`;
    const first = state.decide(1, "llm", `${text} q1`, null, 0)!;
    state.release(1, first.lease);
    expect(state.decide(2, "llm", `${text} q2`, null, 0)!.id).toBe(first.id);
    expect((state.policy("llm") as CacheAware<HostReplica>).counts.hits).toBe(1);
  });
});

describe("routing text cap", () => {
  it("keeps the first 32 K code points, never splitting a surrogate pair", () => {
    expect(capRoutingText("short")).toBe("short");
    const long = "a".repeat(ROUTING_TEXT_CAP + 10);
    expect(capRoutingText(long)).toHaveLength(ROUTING_TEXT_CAP);
    const astral = "😀".repeat(ROUTING_TEXT_CAP);
    const cut = capRoutingText(astral);
    expect(Array.from(cut)).toHaveLength(ROUTING_TEXT_CAP);
    expect(cut).toBe(astral);
    expect(Array.from(capRoutingText(`${astral}tail`))).toHaveLength(ROUTING_TEXT_CAP);
    expect(capRoutingText("ab😀cd", 3)).toBe("ab😀");
  });
});

describe("IpcRoutingGate", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const service = (router: RouterConfig): RoutedService => {
    const replicas = ["a", "b", "c"].map(
      (_id, i) => new ReplicaState("llm", `llm-${i}`, `http://10.0.0.${i + 1}:8000`),
    );
    return { name: "llm", router, balancer: new Balancer(replicas, DEFAULT_HEALTH_POLICY, () => {}, new RoundRobin()) };
  };
  const flush = () => new Promise((resolve) => setImmediate(resolve));

  it("asks once per event-loop turn, hands leases back batched, and routes as the parent says", async () => {
    const state = new RoutingState();
    state.retain(doc([three()]));
    const sent: RouteAsk[] = [];
    const gate = new IpcRoutingGate(
      (m) => sent.push(m) > 0,
      1_000,
      () => {},
    );
    const route = service(RR);
    const got: [string | undefined, number][] = [];
    const client = { routed: (r: ReplicaState | undefined, lease: number) => got.push([r?.id, lease]) };
    for (let i = 0; i < 4; i++) gate.pick(route, null, "ignored", client);
    // One tried replica narrows what the parent may choose.
    gate.pick(route, [route.balancer.replicas[0]!], "", client);
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.eligible).toEqual([null, null, null, null, ["llm-1", "llm-2"]]);
    expect(sent[0]!.texts).toEqual(["", "", "", "", ""]);
    gate.receive(answerRoute(state, 7, sent[0]!)!);
    expect(got.map(([id]) => id)).toEqual(["llm-0", "llm-1", "llm-2", "llm-0", "llm-1"]);
    for (const [, lease] of got) gate.release(lease);
    await flush();
    expect(sent[1]!.services).toEqual([]);
    expect(answerRoute(state, 7, sent[1]!)).toBeNull();
    expect(state.loads().map((l) => l.inFlight)).toEqual([0, 0, 0]);
  });

  it("sends the routing text for the tree policies only (cache_aware, prefix_load)", async () => {
    const sent: RouteAsk[] = [];
    const gate = new IpcRoutingGate(
      (m) => sent.push(m) > 0,
      1_000,
      () => {},
    );
    const client = { routed: () => {} };
    gate.pick(service({ type: "sglang", policy: "prefix_load" }), null, "hello", client);
    gate.pick(service({ type: "sglang", policy: "cache_aware" }), null, "hello", client);
    gate.pick(service({ type: "sglang", policy: "least_load" }), null, "hello", client);
    gate.pick(service({ type: "sglang", policy: "power_of_two", load: "engine" }), null, "hello", client);
    await flush();
    expect(sent[0]!.texts).toEqual(["hello", "hello", "", ""]);
  });

  it("decides with its own state when the parent is silent, logs once, and gives late decisions back", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const state = new RoutingState();
    state.retain(doc([three()]));
    const sent: RouteAsk[] = [];
    const log: string[] = [];
    const gate = new IpcRoutingGate(
      (m) => sent.push(m) > 0,
      500,
      (l) => log.push(l),
    );
    const route = service(RR);
    const got: [string | undefined, number][] = [];
    const client = { routed: (r: ReplicaState | undefined, lease: number) => got.push([r?.id, lease]) };
    gate.pick(route, null, "", client);
    await flush();
    gate.pick(route, null, "", client);
    await flush();
    expect(got).toEqual([]);
    vi.advanceTimersByTime(500);
    // The process's own round robin, no lease.
    expect(got).toEqual([
      ["llm-0", 0],
      ["llm-1", 0],
    ]);
    expect(log).toHaveLength(1);
    expect(log[0]).toContain("routing with this process's own state meanwhile");
    // The parent wakes up and answers both: those loads go back with the next batch.
    gate.receive(answerRoute(state, 1, sent[0]!)!);
    gate.receive(answerRoute(state, 1, sent[1]!)!);
    expect(state.loads().map((l) => l.inFlight)).toEqual([1, 1, 0]);
    await flush();
    answerRoute(state, 1, sent[2]!);
    expect(state.loads().map((l) => l.inFlight)).toEqual([0, 0, 0]);
    expect(got).toHaveLength(2);
  });

  it("routes at once when the channel is closed, and random services never ask", async () => {
    const sent: RouteAsk[] = [];
    const closed = new IpcRoutingGate(
      () => false,
      60_000,
      () => {},
    );
    const got: (string | undefined)[] = [];
    closed.pick(service(RR), null, "", { routed: (r) => got.push(r?.id) });
    await flush();
    expect(got).toEqual(["llm-0"]);
    const open = new IpcRoutingGate(
      (m) => sent.push(m) > 0,
      60_000,
      () => {},
    );
    open.pick(service({ type: "sglang", policy: "random" }), null, "", { routed: (r) => got.push(r?.id) });
    expect(got).toHaveLength(2);
    await flush();
    expect(sent).toEqual([]);
  });
});

describe("RoutingState engine loads", () => {
  it("stamps a fresh load with the replica's in-flight count at the answer, clears it with null, keeps it across documents", () => {
    const state = new RoutingState();
    state.retain(doc([three()]));
    state.decide(1, "llm", "", null, 0);
    state.decide(1, "llm", "", null, 0);
    state.decide(1, "llm", "", null, 0);
    state.decide(1, "llm", "", null, 0);
    state.setEngine("llm", "llm-0", "http://10.0.0.1:8000", { running: 3, waiting: 1, kvUsage: 0.5, at: 7 });
    // Unknown replicas (another URL, another service) are ignored.
    state.setEngine("llm", "llm-1", "http://10.9.9.9:8000", { running: 9, waiting: 9, kvUsage: null, at: 7 });
    state.setEngine("gone", "llm-1", "http://10.0.0.2:8000", { running: 9, waiting: 9, kvUsage: null, at: 7 });
    expect(state.loads().map((l) => l.engine)).toEqual([
      { running: 3, waiting: 1, kvUsage: 0.5, at: 7, inFlightAtScrape: 2 },
      null,
      null,
    ]);
    state.retain(doc([three()]));
    expect(state.loads()[0]!.engine).toMatchObject({ running: 3 });
    state.setEngine("llm", "llm-0", "http://10.0.0.1:8000", null);
    expect(state.loads()[0]!.engine).toBeNull();
  });
});
