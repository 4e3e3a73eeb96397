/**
 * @module
 * What a load-balancing policy is given and returns. Policies see only the candidates the balancer
 * left in (in service, not already tried by this request), in replica order, and their in-flight
 * counts; they never change those counts (the forwarding path does, `load.ts`).
 */

/** The part of a replica a policy reads. */
export interface Loaded {
  /** Requests dispatched to it and not yet released (`load.ts`). */
  readonly inFlight: number;
}

export interface Policy<W extends Loaded> {
  readonly name: string;
  /** Only cache_aware reads the request's text; the proxy reads bodies for it alone. */
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
export function leastLoaded<W extends Loaded>(candidates: readonly W[], random: RandomInt = randomInt): W {
  let min = candidates[0]!.inFlight;
  let ties = 1;
  for (let i = 1; i < candidates.length; i++) {
    const load = candidates[i]!.inFlight;
    if (load < min) {
      min = load;
      ties = 1;
    } else if (load === min) ties++;
  }
  let k = ties === 1 ? 0 : random(ties);
  for (const c of candidates) if (c.inFlight === min && k-- === 0) return c;
  return candidates[0]!;
}

/** A uniform random integer in [0, n). */
export type RandomInt = (n: number) => number;
export const randomInt: RandomInt = (n) => Math.floor(Math.random() * n);
