/** @module SGLang's random: a uniform pick among the candidates. */
import { type Loaded, type Policy, type RandomInt, randomInt } from "./policy.ts";

export class RandomPolicy<W extends Loaded> implements Policy<W> {
  readonly name = "random";
  readonly needsText = false;
  readonly #random: RandomInt;

  constructor(random: RandomInt = randomInt) {
    this.#random = random;
  }

  select(candidates: readonly W[]): W {
    return candidates[this.#random(candidates.length)]!;
  }

  retain(): void {}
}
