/**
 * @module
 * SGLang's power_of_two: two distinct random candidates in O(1) (`i2 = (i1 + 1 + rand(n−1)) % n`),
 * the one with fewer in-flight requests wins, the first sample on a tie. Load is the proxy's own
 * in-flight count: replicas may be vLLM or TGI, which have no `/get_load` to poll.
 */
import { type Loaded, type Policy, type RandomInt, randomInt } from "./policy.ts";

export class PowerOfTwo<W extends Loaded> implements Policy<W> {
  readonly name = "power_of_two";
  readonly needsText = false;
  readonly #random: RandomInt;

  constructor(random: RandomInt = randomInt) {
    this.#random = random;
  }

  select(candidates: readonly W[]): W {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i1 = this.#random(n);
    const i2 = (i1 + 1 + this.#random(n - 1)) % n;
    const w1 = candidates[i1]!;
    const w2 = candidates[i2]!;
    return w1.inFlight <= w2.inFlight ? w1 : w2;
  }

  retain(): void {}
}
