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
 * The hot path only records: a decision is a counter and, within the sample, a reference to the
 * text (reservoir of `MAX_DIGEST_ROUTES` per interval); an admission is a map increment (at most
 * `MAX_DIGEST_CHARGES` keys per interval). Hashing happens when the digest is built, off the request.
 * A peer's digest is validated whole before anything of it is applied; one over the bounds or
 * malformed is dropped and counted.
 */
import * as v from "valibot";
import { MAX_DIGEST_CHARGES, MAX_DIGEST_ROUTES, MeshDigest } from "../../schema/mesh.ts";
import type { ZoneRegistry } from "../rate-limit-store.ts";
import { BLOCK, keyHash, prefixLadder } from "./hash.ts";
import { importLearned, type LearningTree, PeerIndex } from "./peer-index.ts";

/** Most local keys remembered by hash (a peer's charge finds this host's bucket through it). */
const MAX_LOCAL_KEYS = 65_536;

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
 * wider raises the hit rate but spreads load worse (multi-turn prefix_load at 4: max/min served
 * per worker 326/143 against 203/185 for one gateway).
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

  constructor(options: MeshOptions = {}) {
    this.#zones = options.zones ?? null;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#maxRoutes = options.maxRoutes ?? MAX_DIGEST_ROUTES;
    this.#maxCharges = options.maxCharges ?? MAX_DIGEST_CHARGES;
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
    if (routes.length === 0 && admitted.size === 0) return null;
    const digest: MeshDigest = { routes: [], charges: [], sampled_out: seen - routes.length };
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
