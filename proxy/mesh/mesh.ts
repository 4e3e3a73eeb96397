/**
 * @module
 * One gateway host's share of what the gateway's replicas learn (issue 15): every
 * `DIGEST_INTERVAL_MS` the host sends a digest (`schema/mesh.ts`) of the prefixes it routed to
 * which replica and the requests it admitted per rate-limit key since the last one; the gateway's
 * Durable Object relays it to the other hosts (every host already holds a WebSocket to it, whatever
 * the backend: hosts need not reach each other). Each host
 * - puts peers' prefixes in a `PeerIndex` per tree service, which the next decision on a matching
 *   text moves into the policy's own tree (`RoutingState.decide`);
 * - charges peers' admissions to its own buckets (`ZoneRegistry.charge`), so a client's limit holds
 *   across hosts to within what the others admitted during one digest's delay: at most about
 *   rate × delay × (replicas − 1) requests beyond the limit (plus each host's burst), delay being
 *   the interval plus the relay's latency (≤ 0.5 s + tens of ms).
 *
 * - adds peers' in-flight requests per (service, replica), as each told in its last digest (≤ one
 *   interval old), to its own in the policies' load (`policies/policy.ts`'s `peerInFlight`), so a
 *   host's least-loaded is the fleet's, not its third of it.
 *
 * The hot path only records: a decision is a counter and, within the sample, a reference to the
 * text (reservoir of `MAX_DIGEST_ROUTES` per interval); an admission is a map increment (at most
 * `MAX_DIGEST_CHARGES` keys per interval). Hashing happens when the digest is built, off the request.
 * A peer's digest is validated whole before anything of it is applied; one over the bounds or
 * malformed is dropped and counted.
 */
import * as v from "valibot";
import {
  DIGEST_INTERVAL_MS,
  MAX_DIGEST_CHARGES,
  MAX_DIGEST_LOADS,
  MAX_DIGEST_ROUTES,
  MeshDigest,
  type MeshLoad,
} from "../../schema/mesh.ts";
import type { ZoneRegistry } from "../rate-limit-store.ts";
import { BLOCK, keyHash, prefixLadder } from "./hash.ts";
import { importLearned, type LearningTree, PeerIndex } from "./peer-index.ts";

/** Most local keys remembered by hash (a peer's charge finds this host's bucket through it). */
const MAX_LOCAL_KEYS = 65_536;
/** Most peers whose loads are kept (the oldest report goes first; a gateway has a few replicas). */
const MAX_LOAD_PEERS = 64;
/** How long a peer's in-flight counts hold without a newer digest (4 intervals: a host gone stops counting). */
export const LOAD_TTL_MS = 4 * DIGEST_INTERVAL_MS;

/**
 * Where the mesh reads this host's in-flight counts and writes its peers' (`RoutingState`), off the
 * request path: read when a digest is built, written when one arrives or a peer's expire.
 */
export interface LoadShare {
  /** This host's requests in flight now per (service, replica id); replicas with none may be left out. */
  local(): Iterable<{ service: string; id: string; n: number }>;
  /** The sum of the live peers' last counts: service → replica id → requests (absent: 0). */
  peers(totals: ReadonlyMap<string, ReadonlyMap<string, number>>): void;
}

export interface MeshCounts {
  /** Decisions of tree services routed here / sent in digests (the rest were sampled out). */
  routed: number;
  routesSent: number;
  /** Decisions left out of digests by the sample cap (`MAX_DIGEST_ROUTES`). */
  sampledOut: number;
  /** Peers' routes received / prefixes moved into a tree by a decision. */
  routesReceived: number;
  imported: number;
  /** Admissions counted here / keys left out of a full digest. */
  admitted: number;
  chargesDropped: number;
  /** Peers' charges applied. */
  chargesReceived: number;
  /** In-flight counts sent / left out of a full digest (`MAX_DIGEST_LOADS`) / peers' applied. */
  loadsSent: number;
  loadsDropped: number;
  loadsReceived: number;
  /** Digests sent / received / refused (malformed or over the bounds). */
  digestsSent: number;
  digestsReceived: number;
  digestsRefused: number;
}

/** How long after a peer's last digest this host still counts itself one of several (20 intervals). */
export const PEER_TTL_MS = 10_000;

/**
 * Load tolerance (requests) per tree policy of their agreement on new prefixes while the host has
 * peers (`policies/policy.ts`'s `Agreement`), chosen with `npm run bench:mesh` (docs/routing.md):
 * wider spreads load worse (before peers' in-flight counts, multi-turn prefix_load at 4: max/min
 * served per worker 326/143 against 203/185 for one gateway; with them, many tenants at 3: 192/123
 * against 169/123, and a hit rate that moves with the seed either way: 98.9 % / 91.7 % of one
 * gateway's at seeds 1 / 2 against 94.9 % / 94.8 % at 2).
 */
export const AGREEMENT_TOLERANCE: Readonly<Record<"cache_aware" | "prefix_load", number>> = {
  cache_aware: 1,
  prefix_load: 2,
};

export interface MeshOptions {
  zones?: ZoneRegistry | null;
  random?: () => number;
  /** The clock (ms) that says whether peers were heard lately. */
  now?: () => number;
  maxRoutes?: number;
  maxCharges?: number;
  /** This host's name in its digests (default: a random UUID). */
  origin?: string;
  /** How long a peer's loads hold (default `LOAD_TTL_MS`; a slower interval needs longer). */
  loadTtlMs?: number;
}

export class Mesh {
  readonly counts: MeshCounts = {
    routed: 0,
    routesSent: 0,
    sampledOut: 0,
    routesReceived: 0,
    imported: 0,
    admitted: 0,
    chargesDropped: 0,
    chargesReceived: 0,
    loadsSent: 0,
    loadsDropped: 0,
    loadsReceived: 0,
    digestsSent: 0,
    digestsReceived: 0,
    digestsRefused: 0,
  };
  readonly #indexes = new Map<string, PeerIndex>();
  readonly #zones: ZoneRegistry | null;
  readonly #random: () => number;
  readonly #now: () => number;
  /** When a peer's digest last arrived (valid or not: a peer sent it); null: never. */
  #peerAt: number | null = null;
  readonly #maxRoutes: number;
  readonly #maxCharges: number;
  /** This interval's sample of decisions, and how many there were. */
  #routes: { service: string; text: string; id: string }[] = [];
  #seen = 0;
  /** This interval's admissions: zone → key → count and keyHash. */
  #admitted = new Map<string, Map<string, { n: number; k: number }>>();
  #admittedKeys = 0;
  /** keyHash → the local key (LRU). */
  readonly #localKeys = new Map<number, { zone: string; key: string }>();
  readonly #origin: string;
  readonly #loadTtlMs: number;
  #loads: LoadShare | null = null;
  /** Whether the last digest told peers of some load (then the next tells them it is gone, even if nothing else). */
  #toldLoads = false;
  /** Peer origin → its last loads and when they arrived (insertion order: oldest first). */
  readonly #peerLoads = new Map<string, { at: number; loads: readonly MeshLoad[] }>();

  constructor(options: MeshOptions = {}) {
    this.#zones = options.zones ?? null;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#maxRoutes = options.maxRoutes ?? MAX_DIGEST_ROUTES;
    this.#maxCharges = options.maxCharges ?? MAX_DIGEST_CHARGES;
    this.#origin = options.origin ?? globalThis.crypto.randomUUID();
    this.#loadTtlMs = options.loadTtlMs ?? LOAD_TTL_MS;
    if (this.#zones) this.#zones.onAdmit = (zone, key) => this.admitted(zone, key);
  }

  /**
   * Whether another gateway replica spoke within `PEER_TTL_MS` (its digests come every 500 ms while
   * it routes or admits anything): the tree policies then agree on new prefixes.
   */
  hasPeers(): boolean {
    return this.#peerAt !== null && this.#now() - this.#peerAt < PEER_TTL_MS;
  }

  /** The services whose policy keeps a prefix tree (peers' routes for others are ignored). */
  retain(services: Iterable<string>): void {
    const keep = new Set(services);
    for (const name of this.#indexes.keys()) if (!keep.has(name)) this.#indexes.delete(name);
    for (const name of keep) if (!this.#indexes.has(name)) this.#indexes.set(name, new PeerIndex());
  }

  /** The services whose peers' routes are learned (tests, diagnostics). */
  treeServices(): string[] {
    return [...this.#indexes.keys()];
  }

  /** Follows a delta: `trees` now keep a prefix tree, `others` (changed or removed) no longer do; the rest stay unvisited. */
  retainChanged(trees: Iterable<string>, others: Iterable<string>): void {
    for (const name of others) this.#indexes.delete(name);
    for (const name of trees) if (!this.#indexes.has(name)) this.#indexes.set(name, new PeerIndex());
  }

  /** Shares this host's in-flight counts in its digests and hands it its peers' (null: stop). */
  shareLoads(loads: LoadShare | null): void {
    this.#loads = loads;
    if (loads) this.#publishLoads();
  }

  /** Forgets peers whose loads are older than the TTL; true when one was forgotten. */
  #expireLoads(): boolean {
    const now = this.#now();
    let expired = false;
    for (const [origin, told] of this.#peerLoads) {
      if (now - told.at <= this.#loadTtlMs) continue;
      this.#peerLoads.delete(origin);
      expired = true;
    }
    return expired;
  }

  /** Hands the live peers' summed loads to the routing state. */
  #publishLoads(): void {
    const sink = this.#loads;
    if (!sink) return;
    const totals = new Map<string, Map<string, number>>();
    for (const { loads } of this.#peerLoads.values()) {
      for (const l of loads) {
        let byId = totals.get(l.s);
        if (!byId) {
          byId = new Map();
          totals.set(l.s, byId);
        }
        byId.set(l.r, (byId.get(l.r) ?? 0) + l.n);
      }
    }
    sink.peers(totals);
  }

  /** Before a decision on `text`: peers' prefixes of it go into the service's tree. */
  learn<T>(service: string, tree: LearningTree<T>, text: string, byId: ReadonlyMap<string, T>): void {
    const index = this.#indexes.get(service);
    if (!index || index.size === 0) return;
    this.counts.imported += importLearned(index, tree, text, (id) => byId.get(id));
  }

  /** A decision of this host (hot path: a counter, and a reservoir sample of the interval's decisions). */
  routed(service: string, text: string, id: string): void {
    this.counts.routed++;
    if (text.length < BLOCK) return;
    const seen = this.#seen++;
    if (this.#routes.length < this.#maxRoutes) this.#routes.push({ service, text, id });
    else {
      const j = Math.floor(this.#random() * (seen + 1));
      if (j < this.#maxRoutes) this.#routes[j] = { service, text, id };
    }
  }

  /** A request this host admitted under a rate-limit key (hot path: a map increment). */
  admitted(zone: string, key: string): void {
    this.counts.admitted++;
    let keys = this.#admitted.get(zone);
    if (!keys) {
      keys = new Map();
      this.#admitted.set(zone, keys);
    }
    const counted = keys.get(key);
    if (counted !== undefined) counted.n++;
    else if (this.#admittedKeys < this.#maxCharges) {
      // Hashed once per key and interval, and known by its hash from now on (a peer's charge finds it).
      const k = keyHash(zone, key);
      keys.set(key, { n: 1, k });
      this.#admittedKeys++;
      this.#localKeys.delete(k);
      this.#localKeys.set(k, { zone, key });
      if (this.#localKeys.size > MAX_LOCAL_KEYS) this.#localKeys.delete(this.#localKeys.keys().next().value!);
    } else this.counts.chargesDropped++;
  }

  /** The digest of the interval since the last call (and a new interval begins); null when there is nothing to tell. */
  take(): MeshDigest | null {
    const routes = this.#routes;
    const seen = this.#seen;
    const admitted = this.#admitted;
    this.#routes = [];
    this.#seen = 0;
    this.#admitted = new Map();
    this.#admittedKeys = 0;
    if (this.#expireLoads()) this.#publishLoads();
    let loads: MeshLoad[] | null = null;
    if (this.#loads) {
      loads = [];
      for (const { service, id, n } of this.#loads.local()) {
        if (n <= 0) continue;
        if (loads.length < MAX_DIGEST_LOADS) loads.push({ s: service, r: id, n });
        else this.counts.loadsDropped++;
      }
    }
    const tellLoads = loads !== null && (loads.length > 0 || this.#toldLoads);
    if (routes.length === 0 && admitted.size === 0 && !tellLoads) return null;
    const digest: MeshDigest = { routes: [], charges: [], sampled_out: seen - routes.length };
    if (loads !== null) {
      digest.origin = this.#origin;
      digest.loads = loads;
      this.#toldLoads = loads.length > 0;
      this.counts.loadsSent += loads.length;
    }
    const sent = new Set<string>();
    for (const r of routes) {
      const h = prefixLadder(r.text);
      const last = h[h.length - 1]!;
      // The same prompt sent to the same replica twice in an interval is told once.
      const dedupe = `${r.service}\u0000${r.id}\u0000${last}`;
      if (sent.has(dedupe)) continue;
      sent.add(dedupe);
      digest.routes.push({ s: r.service, r: r.id, b: Math.floor(r.text.length / BLOCK), h });
    }
    for (const [zone, keys] of admitted) {
      for (const { n, k } of keys.values()) digest.charges.push({ z: zone, k, n });
    }
    this.counts.routesSent += digest.routes.length;
    this.counts.sampledOut += digest.sampled_out;
    this.counts.digestsSent++;
    return digest;
  }

  /** A peer's digest (anything: it is validated here, whole, before any of it is applied). */
  apply(raw: unknown): boolean {
    this.#peerAt = this.#now();
    const parsed = v.safeParse(MeshDigest, raw);
    if (!parsed.success) {
      this.counts.digestsRefused++;
      return false;
    }
    const digest = parsed.output;
    this.counts.digestsReceived++;
    for (const r of digest.routes) {
      const index = this.#indexes.get(r.s);
      if (!index) continue;
      index.add(r.r, r.h, r.b);
      this.counts.routesReceived++;
    }
    if (digest.origin !== undefined && digest.loads !== undefined && digest.origin !== this.#origin) {
      this.#peerLoads.delete(digest.origin);
      this.#peerLoads.set(digest.origin, { at: this.#now(), loads: digest.loads });
      if (this.#peerLoads.size > MAX_LOAD_PEERS) this.#peerLoads.delete(this.#peerLoads.keys().next().value!);
      this.counts.loadsReceived += digest.loads.length;
      this.#expireLoads();
      this.#publishLoads();
    } else if (this.#expireLoads()) this.#publishLoads();
    const zones = this.#zones;
    if (zones) {
      for (const c of digest.charges) {
        const local = this.#localKeys.get(c.k);
        if (local && local.zone === c.z) zones.charge(c.z, local.key, c.n);
        else zones.chargeHash(c.z, c.k, c.n);
        this.counts.chargesReceived++;
      }
    }
    return true;
  }
}
