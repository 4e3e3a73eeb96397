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

/** The first candidate with the least in-flight requests (Rust's `min_by_key`: first on ties). */
export function leastLoaded<W extends Loaded>(candidates: readonly W[]): W {
  let best = candidates[0]!;
  for (let i = 1; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (c.inFlight < best.inFlight) best = c;
  }
  return best;
}

/** A uniform random integer in [0, n). */
export type RandomInt = (n: number) => number;
export const randomInt: RandomInt = (n) => Math.floor(Math.random() * n);
