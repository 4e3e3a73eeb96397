/**
 * Two gateway hosts sharing through digests, without sockets: a prefix one host routed is honoured
 * by the other after one digest, a client's rate limit holds across both (the error bound), and a
 * peer's digest that is malformed or over the bounds changes nothing.
 */
import { describe, expect, it } from "vitest";
import { seeded } from "../../bench/router-workloads.ts";
import { MAX_DIGEST_LOADS, MAX_DIGEST_ROUTES, MAX_IN_FLIGHT, MAX_LADDER } from "../../schema/mesh.ts";
import type { RouterConfig } from "../../schema/router.ts";
import { configDocument } from "../../test/support/config-builder.ts";
import { combinedLoad, fleetCombinedLoad, fleetInFlightLoad, inFlightLoad } from "../policies/policy.ts";
import { ZoneRegistry } from "../rate-limit-store.ts";
import { RoutingState } from "../routing-state.ts";
import { BLOCK, eachPrefixHash, isRung, keyHash, prefixLadder } from "./hash.ts";
import { LOAD_TTL_MS, Mesh } from "./mesh.ts";
import { PeerIndex } from "./peer-index.ts";

const replicas = Array.from({ length: 4 }, (_, i) => `http://10.0.0.${i + 1}:8000`);
const doc = (router: RouterConfig) => configDocument(1, [{ name: "llm", replicas, router }]);
const CACHE_AWARE: RouterConfig = { type: "sglang", policy: "cache_aware" };
const PREFIX_LOAD: RouterConfig = { type: "sglang", policy: "prefix_load" };

function text(seed: number, length: number): string {
  const r = seeded(seed);
  return Array.from({ length }, () => String.fromCharCode(0x4e00 + Math.floor(r() * 20_000))).join("");
}

function hosts(router: RouterConfig, now?: () => number) {
  return [0, 1].map(() => {
    const state = new RoutingState();
    state.retain(doc(router));
    const mesh = new Mesh({ now });
    state.setMesh(mesh);
    return { state, mesh };
  });
}

describe("prefix hashes", () => {
  it("hash a prefix alike whatever follows, at the ladder's rungs and the last block", () => {
    const a = text(1, 40 * BLOCK + 5);
    const ladder = prefixLadder(a);
    const rungs = Array.from({ length: 40 }, (_, i) => i + 1).filter((j) => isRung(j) || j === 40);
    expect(rungs).toEqual([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40]);
    expect(ladder).toHaveLength(rungs.length);
    const all: number[] = [];
    eachPrefixHash(`${a}tail`, 1000, (h) => all.push(h) > 0);
    expect(rungs.map((j) => all[j - 1])).toEqual(ladder);
    expect(prefixLadder(a.slice(0, 24 * BLOCK)).at(-1)).toBe(ladder[8]);
    expect(prefixLadder(text(2, 24 * BLOCK)).at(-1)).not.toBe(ladder[8]);
    expect(prefixLadder("short")).toEqual([]);
    expect(prefixLadder(text(3, 10_000_000 / 8)).length).toBeLessThanOrEqual(MAX_LADDER);
    expect(keyHash("z", "a")).not.toBe(keyHash("z", "b"));
  });

  it("peers' index gives the deepest prefix per replica once, then forgets it", () => {
    const index = new PeerIndex(100);
    const a = text(4, 20 * BLOCK);
    index.add("r1", prefixLadder(a), 20);
    index.add("r2", prefixLadder(a.slice(0, 8 * BLOCK)), 8);
    const learned = index.take(`${a}more`);
    expect(learned).toEqual([
      { id: "r1", units: 20 * BLOCK },
      { id: "r2", units: 8 * BLOCK },
    ]);
    expect(index.take(a)).toEqual([]);
    // Bounded: the oldest hashes go first.
    for (let i = 0; i < 50; i++) index.add("r1", prefixLadder(text(100 + i, 4 * BLOCK)), 4);
    expect(index.size).toBe(100);
  });
});

describe.each([CACHE_AWARE, PREFIX_LOAD])("$policy across two hosts", (router) => {
  it("honours on one host, after one digest, the prefixes the other routed", () => {
    const [a, b] = hosts(router);
    const prompts = Array.from({ length: 40 }, (_, i) => text(10 + i, 3000));
    const where = prompts.map((p) => {
      const d = a!.state.decide(0, "llm", p, null, 0)!;
      a!.state.release(0, d.lease);
      return d.id;
    });
    expect(b!.mesh.apply(JSON.parse(JSON.stringify(a!.mesh.take())))).toBe(true);
    // Later turns (prompt + more) on the other host go where the first host sent their prefix.
    const followed = prompts.map((p, i) => {
      const d = b!.state.decide(0, "llm", `${p}${text(1000 + i, 200)}`, null, 0)!;
      b!.state.release(0, d.lease);
      return d.id === where[i];
    });
    expect(followed.every(Boolean)).toBe(true);
    expect(b!.mesh.counts.imported).toBe(40);
    expect(new Set(where).size).toBeGreaterThan(1);
  });

  it("without the digest the other host routes on its own (the loss the mesh removes)", () => {
    const [a, b] = hosts(router);
    const prompts = Array.from({ length: 40 }, (_, i) => text(10 + i, 3000));
    let same = 0;
    for (const p of prompts) {
      const x = a!.state.decide(0, "llm", p, null, 0)!;
      const y = b!.state.decide(0, "llm", `${p}x`, null, 0)!;
      a!.state.release(0, x.lease);
      b!.state.release(0, y.lease);
      if (x.id === y.id) same++;
    }
    expect(same).toBeLessThan(30);
  });
});

describe("tree services", () => {
  it("follow a delta's services alone: a kept index stays, a service no longer a tree one and a removed one go", () => {
    const mesh = new Mesh({ random: seeded(1) });
    mesh.retain(["a", "b", "c"]);
    mesh.retainChanged(["a", "d"], ["b", "gone"]);
    expect(mesh.treeServices().sort()).toEqual(["a", "c", "d"]);
    // The same as following the whole list.
    const whole = new Mesh({ random: seeded(1) });
    whole.retain(["a", "c", "d"]);
    expect(whole.treeServices().sort()).toEqual(mesh.treeServices().sort());
  });
});

describe("digests", () => {
  it("sample a busy interval down to the cap, and tell a repeated prompt once", () => {
    const mesh = new Mesh({ random: seeded(1) });
    mesh.retain(["llm"]);
    const p = text(5, 100);
    for (let i = 0; i < 3; i++) mesh.routed("llm", p, "llm-0");
    expect(mesh.take()!.routes).toHaveLength(1);
    for (let i = 0; i < 5000; i++) mesh.routed("llm", text(i, 64), "llm-1");
    const d = mesh.take()!;
    expect(d.routes.length).toBeLessThanOrEqual(MAX_DIGEST_ROUTES);
    expect(d.sampled_out).toBe(5000 - MAX_DIGEST_ROUTES);
    expect(mesh.take()).toBeNull();
    expect(JSON.stringify(d).length).toBeLessThan(64 * 1024);
  });

  it("from a peer are refused whole when malformed or over the bounds", () => {
    const [a, b] = hosts(CACHE_AWARE);
    const good = { routes: [{ s: "llm", r: "llm-0", b: 1, h: [1] }], charges: [], sampled_out: 0 };
    const bad: unknown[] = [
      null,
      "x",
      { ...good, routes: Array.from({ length: MAX_DIGEST_ROUTES + 1 }, () => good.routes[0]) },
      { ...good, routes: [{ s: "llm", r: "llm-0", b: 1, h: Array(MAX_LADDER + 1).fill(1) }] },
      { ...good, charges: [{ z: "zone", k: -1, n: 1 }] },
      { ...good, charges: [{ z: "zone", k: 1, n: 1e12 }] },
      { ...good, routes: [{ s: "llm", r: "llm-0", b: 1, h: [2 ** 60] }] },
    ];
    for (const d of bad) expect(b!.mesh.apply(d)).toBe(false);
    expect(b!.mesh.counts.digestsRefused).toBe(bad.length);
    expect(b!.mesh.counts.routesReceived).toBe(0);
    // Routes for an unknown service or replica are ignored; decisions go on.
    expect(b!.mesh.apply({ ...good, routes: [{ s: "other", r: "x", b: 1, h: [1] }] })).toBe(true);
    expect(b!.state.decide(0, "llm", text(1, 100), null, 0)).not.toBeNull();
    expect(a!.mesh.take()).toBeNull();
  });
});

describe("rate limits across hosts", () => {
  const zone = { id: "z", rate: 2000, burst: 0 }; // 2 r/s, no burst

  function limited() {
    let now = 1_000_000;
    const make = () => {
      const zones = new ZoneRegistry(100, () => now);
      zones.retain([zone]);
      return { zones, mesh: new Mesh({ zones }) };
    };
    return { a: make(), b: make(), advance: (ms: number) => (now += ms), now: () => now };
  }

  it("a key admitted on one host fills its bucket on the other, whether it has a bucket there or not", () => {
    const { a, b, advance } = limited();
    expect(a.zones.take("z", "client")).toBeGreaterThanOrEqual(0);
    // b has never seen the key: the charge waits under its hash and the key adopts it.
    b.mesh.apply(a.mesh.take());
    advance(100);
    expect(b.zones.take("z", "client")).toBeLessThan(0);
    advance(500);
    expect(b.zones.take("z", "client")).toBeGreaterThanOrEqual(0);
    // b's bucket now exists: a's next admission charges it directly.
    advance(500);
    expect(a.zones.take("z", "client")).toBeGreaterThanOrEqual(0);
    b.mesh.apply(a.mesh.take());
    expect(b.zones.take("z", "client")).toBeLessThan(0);
  });

  it("a client alternating between 2 hosts gets the limit, not twice it, to within rate × delay", () => {
    const { a, b, advance } = limited();
    const hostsOf = [a, b];
    let admitted = 0;
    const seconds = 20;
    // 20 requests/s, alternating; digests every 500 ms both ways.
    for (let t = 0; t < seconds * 1000; t += 50) {
      const h = hostsOf[(t / 50) % 2]!;
      if (h.zones.take("z", "client")! >= 0) admitted++;
      if (t % 500 === 450) {
        const da = a.mesh.take();
        const db = b.mesh.take();
        if (da) b.mesh.apply(da);
        if (db) a.mesh.apply(db);
      }
      advance(50);
    }
    const limit = (zone.rate / 1000) * seconds;
    if (process.env.MESH_FIGURES) console.log(`admitted ${admitted} of limit ${limit}`);
    // Without sharing: 2 × limit. Bound: rate × delay × (replicas − 1) per delay ≈ +50 % at 0.5 s, 2 r/s.
    expect(admitted).toBeGreaterThanOrEqual(limit);
    expect(admitted).toBeLessThanOrEqual(limit * 1.5 + 2);
  });
});

describe.each([CACHE_AWARE, PREFIX_LOAD])("$policy agreement on new prefixes", (router) => {
  it("hosts that heard a peer send a new prefix to the same replica before any route of it", () => {
    const [a, b] = hosts(router);
    // Each has heard the other (a digest with nothing of these prompts): agreement is on.
    const empty = { routes: [], charges: [{ z: "none", k: 1, n: 1 }], sampled_out: 0 };
    expect(a!.mesh.hasPeers()).toBe(false);
    a!.mesh.apply(empty);
    b!.mesh.apply(empty);
    expect(a!.mesh.hasPeers()).toBe(true);
    let same = 0;
    const where = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const p = text(10 + i, 3000);
      const x = a!.state.decide(0, "llm", p, null, 0)!;
      const y = b!.state.decide(0, "llm", `${p}x`, null, 0)!;
      a!.state.release(0, x.lease);
      b!.state.release(0, y.lease);
      where.add(x.id);
      if (x.id === y.id) same++;
    }
    expect(same).toBe(40);
    // Still spread: the hash of each prefix, not one replica for all.
    expect(where.size).toBeGreaterThan(2);
  });
});

describe("in-flight counts across hosts", () => {
  const peerLoads = (state: RoutingState) => Object.fromEntries(state.loads().map((l) => [l.id, l.peerInFlight]));

  it("prefix_load on one host sees the requests the other has in flight, and no longer once they end", () => {
    let now = 1_000_000;
    const [a, b] = hosts(PREFIX_LOAD, () => now);
    const ids = a!.state.loads().map((l) => l.id);
    // a holds 3 requests on each replica but the last.
    const held = [0, 1, 2].flatMap((k) => [1, 2, 3].map(() => a!.state.decide(0, "llm", "", [ids[k]!], 0)!.lease));
    const digest = JSON.parse(JSON.stringify(a!.mesh.take()));
    expect(digest.loads).toHaveLength(3);
    expect(typeof digest.origin).toBe("string");
    expect(b!.mesh.apply(digest)).toBe(true);
    expect(peerLoads(b!.state)).toEqual({ [ids[0]!]: 3, [ids[1]!]: 3, [ids[2]!]: 3, [ids[3]!]: 0 });
    // New prefixes on b go to the replica a left idle (3 requests of load outweigh any hash).
    for (let i = 0; i < 20; i++) {
      const d = b!.state.decide(0, "llm", text(300 + i, 2000), null, 0)!;
      b!.state.release(0, d.lease);
      expect(d.id).toBe(ids[3]);
    }
    // a's requests end: its next digest says so (an empty list), even with nothing else to tell.
    for (const lease of held) a!.state.release(0, lease);
    const after = a!.mesh.take()!;
    expect(after.loads).toEqual([]);
    expect(after.routes).toEqual([]);
    b!.mesh.apply(after);
    expect(Object.values(peerLoads(b!.state))).toEqual([0, 0, 0, 0]);
    // Nothing held, nothing told before: no digest.
    expect(a!.mesh.take()).toBeNull();
    // A peer that stops telling stops counting after LOAD_TTL_MS (checked when this host builds its digest).
    const d = a!.state.decide(0, "llm", "", null, 0)!;
    b!.mesh.apply(a!.mesh.take());
    expect(Object.values(peerLoads(b!.state)).reduce((x, y) => x + y)).toBe(1);
    now += LOAD_TTL_MS + 1;
    b!.mesh.take();
    expect(Object.values(peerLoads(b!.state))).toEqual([0, 0, 0, 0]);
    a!.state.release(0, d.lease);
  });

  it("are sent for prefix_load services only (the others' loads do not read them)", () => {
    const [a] = hosts(CACHE_AWARE);
    const d = a!.state.decide(0, "llm", "", null, 0)!;
    expect(a!.mesh.take()).toBeNull();
    a!.state.release(0, d.lease);
  });

  it("sums the peers' counts, each peer's last digest replacing its previous, and ignores its own", () => {
    const [a] = hosts(PREFIX_LOAD);
    const id = a!.state.loads()[0]!.id;
    const from = (origin: string, n: number) => ({
      routes: [],
      charges: [],
      sampled_out: 0,
      origin,
      loads: [{ s: "llm", r: id, n }],
    });
    a!.mesh.apply(from("p1", 2));
    a!.mesh.apply(from("p2", 5));
    a!.mesh.apply(from("p1", 1));
    a!.mesh.apply({ ...from("p3", 4), loads: [{ s: "llm", r: "gone", n: 4 }] });
    expect(a!.state.loads()[0]!.peerInFlight).toBe(6);
    // A digest of this host relayed back to it (its own origin) is not a peer's.
    const own = a!.state.decide(0, "llm", "", null, 0)!;
    const mine = a!.mesh.take()!;
    a!.mesh.apply(mine);
    expect(a!.state.loads().reduce((n, l) => n + l.peerInFlight, 0)).toBe(6);
    a!.state.release(0, own.lease);
  });

  it("a digest's loads over the bounds, without an origin or not counts are refused whole", () => {
    const [, b] = hosts(PREFIX_LOAD);
    const base = { routes: [], charges: [], sampled_out: 0, origin: "p" };
    const load = { s: "llm", r: "llm-0", n: 1 };
    const bad: unknown[] = [
      { routes: [], charges: [], sampled_out: 0, loads: [load] },
      { ...base, loads: Array.from({ length: MAX_DIGEST_LOADS + 1 }, () => load) },
      { ...base, loads: [{ ...load, n: 0 }] },
      { ...base, loads: [{ ...load, n: 1.5 }] },
      { ...base, loads: [{ ...load, n: MAX_IN_FLIGHT + 1 }] },
      { ...base, loads: [{ ...load, r: "" }] },
      { ...base, origin: "x".repeat(65), loads: [load] },
    ];
    for (const d of bad) expect(b!.mesh.apply(d)).toBe(false);
    expect(b!.mesh.counts.digestsRefused).toBe(bad.length);
    expect(b!.mesh.counts.loadsReceived).toBe(0);
    // Older hosts' digests (no origin, no loads) still apply.
    expect(b!.mesh.apply({ routes: [], charges: [], sampled_out: 0 })).toBe(true);
  });

  it("only prefix_load's load reads them, and alone (no peer) it is the load it always was", () => {
    const engine = { running: 6, waiting: 2, kvUsage: null, inFlightAtScrape: 3, at: 0 };
    for (const w of [
      { inFlight: 4 },
      { inFlight: 4, peerInFlight: 0 },
      { inFlight: 4, engine },
      { inFlight: 4, peerInFlight: 0, engine },
    ]) {
      expect(fleetInFlightLoad(w)).toBe(inFlightLoad(w));
      expect(fleetCombinedLoad(w)).toBe(combinedLoad(w));
    }
    // With peers: theirs added; against a scrape, the larger of the peers' count and the engine's excess (not both).
    expect(inFlightLoad({ inFlight: 4, peerInFlight: 7 })).toBe(4);
    expect(fleetInFlightLoad({ inFlight: 4, peerInFlight: 7 })).toBe(11);
    expect(fleetCombinedLoad({ inFlight: 4, peerInFlight: 7, engine })).toBe(11);
    expect(fleetCombinedLoad({ inFlight: 4, peerInFlight: 2, engine })).toBe(9);
  });
});
