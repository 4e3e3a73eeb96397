/**
 * @module
 * What a load-balancing policy is given and returns. Policies see only the candidates the balancer
 * left in (in service, not already tried by this request), in replica order, their in-flight
 * counts and, where the host scrapes engines, each engine's last load; they never change those
 * counts (the forwarding path does, `load.ts`).
 */

/** The part of a replica a policy reads. */
export interface Loaded {
  /** Requests dispatched to it and not yet released (`load.ts`). */
  readonly inFlight: number;
  /**
   * Requests the gateway's other replicas said they had in flight on it at their last digest
   * (`proxy/mesh/mesh.ts`, ≤ one digest interval old); 0 or absent for a gateway alone.
   */
  readonly peerInFlight?: number;
  /**
   * The engine's own load at its last fresh scrape (`schema/engine.ts`); null or absent when the
   * replica exports none, the scrape failed or went stale (policies then see `inFlight` alone).
   */
  readonly engine?: EngineLoad | null;
}

/** What a replica's engine said of its load at one scrape (the host's parent process scrapes it). */
export interface EngineLoad {
  /** Requests in the engine's running batch (`vllm:num_requests_running`, `sglang:num_running_reqs`). */
  readonly running: number;
  /** Requests queued in the engine (`vllm:num_requests_waiting`, `sglang:num_queue_reqs`). */
  readonly waiting: number;
  /** KV-cache use, 0–1; null when the engine does not export it. */
  readonly kvUsage: number | null;
  /** The gateway's own in-flight count on this replica when the scrape was answered. */
  readonly inFlightAtScrape: number;
  /** When the scrape was answered (ms, the host's clock). */
  readonly at: number;
}

/**
 * The load a policy compares: the gateway's own in-flight count (live), plus the load the engine had
 * at its last fresh scrape beyond what this gateway had sent it then (other gateway replicas', other
 * clients'). When this gateway is the engine's only client it is the in-flight count exactly, and a
 * request that finished since the scrape is not counted (the engine's number is seconds old, the
 * gateway's is live). The in-flight count alone without engine signals.
 */
export function combinedLoad(w: Loaded): number {
  const e = w.engine;
  if (!e) return w.inFlight;
  return w.inFlight + Math.max(0, e.running + e.waiting - e.inFlightAtScrape);
}

/**
 * `combinedLoad` with the gateway's other replicas' in-flight counts (`peerInFlight`, one digest
 * old): the others' share is the larger of what the peers told and what the engine had beyond this
 * host's at its scrape (seconds old; it also holds other clients'). Not their sum: the scrape already
 * counts the peers' requests of that moment. Alone (no peer) it is `combinedLoad` exactly.
 */
export function fleetCombinedLoad(w: Loaded): number {
  const e = w.engine;
  const peers = w.peerInFlight ?? 0;
  if (!e) return w.inFlight + peers;
  return w.inFlight + Math.max(peers, e.running + e.waiting - e.inFlightAtScrape);
}

/** How a policy measures a candidate's load (`router.load`: `in_flight` or `engine`). */
export type LoadOf = (w: Loaded) => number;
export const inFlightLoad: LoadOf = (w) => w.inFlight;
/** This host's in-flight count plus its peers' as they last told (alone: `inFlightLoad`). */
export const fleetInFlightLoad: LoadOf = (w) => w.inFlight + (w.peerInFlight ?? 0);
export const loadOf = (load: "in_flight" | "engine"): LoadOf => (load === "engine" ? combinedLoad : inFlightLoad);
/**
 * prefix_load's load: `loadOf`'s with the gateway's other replicas' in-flight counts (its load term
 * is worth a request's characters, so a host that saw only its third of the fleet's load moved
 * conversations on noise). cache_aware keeps `loadOf`: its thresholds are SGLang's, on one router's count.
 */
export const fleetLoadOf = (load: "in_flight" | "engine"): LoadOf =>
  load === "engine" ? fleetCombinedLoad : fleetInFlightLoad;

export interface Policy<W extends Loaded> {
  readonly name: string;
  /** Only the tree policies (cache_aware, prefix_load) read the request's text; the proxy reads bodies for them alone. */
  readonly needsText: boolean;
  /** One of `candidates` (never empty). `text` is the routing text ("" when there is none). */
  select(candidates: readonly W[], text: string, now: number): W;
  /** The replica set changed (a new document): forget replicas that left, learn new ones. */
  retain(replicas: readonly W[]): void;
}

/**
 * A candidate with the least in-flight requests, chosen at random among those that tie (SGLang
 * PR #33138; before it, Rust's `min_by_key` took the first, which under light load sent every miss
 * to the same replica and left others idle).
 */
export function leastLoaded<W extends Loaded>(
  candidates: readonly W[],
  random: RandomInt = randomInt,
  load: LoadOf = inFlightLoad,
): W {
  let min = load(candidates[0]!);
  let ties = 1;
  for (let i = 1; i < candidates.length; i++) {
    const l = load(candidates[i]!);
    if (l < min) {
      min = l;
      ties = 1;
    } else if (l === min) ties++;
  }
  let k = ties === 1 ? 0 : random(ties);
  for (const c of candidates) if (load(c) === min && k-- === 0) return c;
  return candidates[0]!;
}

/** A uniform random integer in [0, n). */
export type RandomInt = (n: number) => number;
export const randomInt: RandomInt = (n) => Math.floor(Math.random() * n);

/**
 * How gateway replicas that have not heard of a prefix yet still send it to the same replica (the
 * mesh, `proxy/mesh/`, tells them only after one digest's delay): a tree policy's choice among
 * candidates that are equally good for the text (cache_aware's miss, prefix_load's cheapest with
 * the longest match) is no longer random but a rendezvous hash of the text's first block past what
 * the tree knows, over the candidates whose load is within `tolerance` requests of the least. Every
 * gateway replica computes the same hash, so they agree whenever their near-least sets share the
 * winner. `RoutingState` sets it while the mesh has peers; a single gateway keeps SGLang's random
 * tie-break.
 */
export interface Agreement<W> {
  /** Load (requests) within which a candidate counts as least loaded. */
  readonly tolerance: number;
  /** A candidate's name, the same on every gateway replica (the replica id). */
  id(w: W): string;
}

/** UTF-16 units of the text past its longest known prefix that name a new prefix. */
export const AGREEMENT_UNITS = 32;

/** 32-bit FNV-1a of `text`'s first `end` units. */
function fnv(text: string, end: number, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The key of a new prefix: the hash of `text` up to one `AGREEMENT_UNITS` block past `known`
 * (the longest match the tree has, rounded down to a block, so that gateway replicas whose trees
 * differ by a few characters agree).
 */
export function agreementKey(text: string, known: number): number {
  const end = Math.min(text.length, Math.floor(known / AGREEMENT_UNITS) * AGREEMENT_UNITS + AGREEMENT_UNITS);
  return fnv(text, end);
}

/** Rendezvous (highest random weight): the index among `n` for which `near(i)` holds with the highest score for `key`. */
export function rendezvous(n: number, key: number, near: (i: number) => boolean, id: (i: number) => string): number {
  let best = -1;
  let bestScore = -1;
  for (let i = 0; i < n; i++) {
    if (!near(i)) continue;
    // murmur3's finaliser over the key mixed with the id's hash.
    const name = id(i);
    let h = fnv(name, name.length, key ^ 0x9e3779b9);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    if (h > bestScore) {
      bestScore = h;
      best = i;
    }
  }
  return best;
}
