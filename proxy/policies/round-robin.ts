/**
 * @module
 * SGLang's round_robin: one counter for the service, taken modulo the number of candidates, so the
 * sequence shifts when the healthy set changes (3 replicas → 0,1,2,0,1; middle one out → 0,2,0,2).
 */
import type { Loaded, Policy } from "./policy.ts";

export class RoundRobin<W extends Loaded> implements Policy<W> {
  readonly name = "round_robin";
  readonly needsText = false;
  #counter = 0;

  select(candidates: readonly W[]): W {
    return candidates[this.#counter++ % candidates.length]!;
  }

  retain(): void {}
}
