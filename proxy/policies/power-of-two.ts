/**
 * @module
 * SGLang's power_of_two: two distinct random candidates in O(1) (`i2 = (i1 + 1 + rand(n−1)) % n`),
 * the one with less load wins, the first sample on a tie. Load is the proxy's own in-flight count by
 * default (replicas may be vLLM or TGI, which have no `/get_load` to poll); `router.load: engine`
 * compares `combinedLoad`, the engine's scraped running + waiting plus what was sent since — SGLang
 * compares its polled loads when it has them for both samples, which `combinedLoad` does per
 * replica (a replica without a scrape counts its in-flight requests).
 */
import { inFlightLoad, type Loaded, type LoadOf, type Policy, type RandomInt, randomInt } from "./policy.ts";

export class PowerOfTwo<W extends Loaded> implements Policy<W> {
  readonly name = "power_of_two";
  readonly needsText = false;
  readonly #random: RandomInt;
  readonly #load: LoadOf;

  constructor(random: RandomInt = randomInt, load: LoadOf = inFlightLoad) {
    this.#random = random;
    this.#load = load;
  }

  select(candidates: readonly W[]): W {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i1 = this.#random(n);
    const i2 = (i1 + 1 + this.#random(n - 1)) % n;
    const w1 = candidates[i1]!;
    const w2 = candidates[i2]!;
    return this.#load(w1) <= this.#load(w2) ? w1 : w2;
  }

  retain(): void {}
}
