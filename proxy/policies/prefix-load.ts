/**
 * @module
 * prefix_load, Gateplane's own policy: every candidate is priced, in characters of prefill, as
 *
 *     cost = (characters of the request it does not hold) + prefix_load_request_cost × load
 *
 * and the cheapest wins (NVIDIA Dynamo's KV router prices `overlap_weight × prefill blocks + active
 * blocks` the same way). What a replica holds comes from the same approximate radix tree as
 * cache_aware (`radix-tree.ts`, learned from this policy's own decisions, per-tenant budget and
 * eviction), matched once for all candidates. Load is the gateway's in-flight count, or with
 * `router.load: engine` `combinedLoad` (the engine's running + waiting at its last scrape plus what
 * was sent since; see `DEFAULT_LOAD` in `schema/router.ts` for why that is not the default).
 *
 * Why not cache_aware's switch: cache_aware follows the prefix until the imbalance crosses an
 * absolute threshold (64 requests by default), so a popular system prompt pins its traffic to one
 * replica while others idle; here every request of load costs the same characters everywhere, so
 * a conversation stays where its history is (thousands of characters saved) while a new one with
 * only a shared system prompt goes to a less loaded replica as soon as the load difference is worth
 * more than that prompt — shared prefixes get copied to as many replicas as their traffic needs.
 *
 * Ties (equal cost, common when nothing matches and loads are equal) go to a random one of them,
 * so light traffic does not pile on the first replica. With `prefix_load_temperature` T > 0 the
 * choice is a softmax over costs min–max normalised to [0, 1], p ∝ exp(−norm / T) (Dynamo's
 * `router_temperature`), spreading near-ties too.
 */
import type { PrefixLoadOptions } from "../../schema/router.ts";
import {
  type Agreement,
  agreementKey,
  inFlightLoad,
  type Loaded,
  type LoadOf,
  type Policy,
  type RandomInt,
  rendezvous,
} from "./policy.ts";
import { EvictionSchedule, RadixTree } from "./radix-tree.ts";

export type PrefixLoadConfig = PrefixLoadOptions & { eviction_interval: number; max_tree_size: number };

export interface PrefixLoadCounts {
  /** Decisions that went to a candidate holding some of the text. */
  hits: number;
  misses: number;
  evictions: number;
}

export class PrefixLoad<W extends Loaded> implements Policy<W> {
  readonly name = "prefix_load";
  readonly needsText = true;
  readonly options: Readonly<PrefixLoadConfig>;
  readonly tree = new RadixTree<W>();
  readonly counts: PrefixLoadCounts = { hits: 0, misses: 0, evictions: 0 };
  readonly #random: () => number;
  readonly #randomInt: RandomInt;
  readonly #load: LoadOf;
  readonly #eviction: EvictionSchedule;
  /** Scratch arrays reused across decisions (the hot path allocates nothing per candidate). */
  #matched: number[] = [];
  #cost: number[] = [];
  /**
   * Set while this host has gateway peers (`policy.ts`'s `Agreement`): among the candidates with the
   * longest match of those within `tolerance` requests' cost of the cheapest, the text's rendezvous
   * hash chooses (with `prefix_load_temperature` 0).
   */
  agreement: Agreement<W> | null = null;

  constructor(
    options: PrefixLoadConfig,
    replicas: readonly W[],
    now = Date.now(),
    random: () => number = Math.random,
    load: LoadOf = inFlightLoad,
  ) {
    this.options = options;
    this.#random = random;
    this.#randomInt = (n) => Math.floor(random() * n);
    this.#load = load;
    this.#eviction = new EvictionSchedule(now);
    for (const w of replicas) this.tree.addTenant(w);
  }

  select(candidates: readonly W[], text: string, now: number): W {
    const { eviction_interval, max_tree_size } = this.options;
    if (this.#eviction.run(this.tree, eviction_interval, max_tree_size, now)) this.counts.evictions++;
    const i = this.#choose(candidates, text);
    const chosen = candidates[i]!;
    if (this.#matched[i]! > 0) this.counts.hits++;
    else this.counts.misses++;
    if (text !== "") this.tree.insert(text, chosen);
    return chosen;
  }

  /** The index of the chosen candidate; its match stays in `#matched`. */
  #choose(candidates: readonly W[], text: string): number {
    const n = candidates.length;
    const matched = this.#matched;
    const cost = this.#cost;
    const total = text === "" ? 0 : this.tree.matchEach(text, candidates, matched);
    if (text === "") for (let j = 0; j < n; j++) matched[j] = 0;
    const perRequest = this.options.prefix_load_request_cost;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < n; j++) {
      const c = total - matched[j]! + perRequest * this.#load(candidates[j]!);
      cost[j] = c;
      if (c < min) min = c;
      if (c > max) max = c;
    }
    const t = this.options.prefix_load_temperature;
    if (t > 0 && max > min) {
      // Softmax over normalised costs: the cheapest has weight 1, the dearest exp(−1/T).
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const weight = Math.exp(-(cost[j]! - min) / (max - min) / t);
        cost[j] = weight;
        sum += weight;
      }
      let r = this.#random() * sum;
      for (let j = 0; j < n; j++) {
        r -= cost[j]!;
        if (r < 0) return j;
      }
      return n - 1;
    }
    const agreement = this.agreement;
    if (agreement !== null && text !== "") {
      // Never trade a longer match for the hash: only the near-cheapest with the longest match among them.
      const near = min + agreement.tolerance * perRequest;
      let longest = 0;
      let known = 0;
      for (let j = 0; j < n; j++) {
        if (matched[j]! > known) known = matched[j]!;
        if (cost[j]! <= near && matched[j]! > longest) longest = matched[j]!;
      }
      const key = agreementKey(text, known);
      return rendezvous(
        n,
        key,
        (j) => cost[j]! <= near && matched[j] === longest,
        (j) => agreement.id(candidates[j]!),
      );
    }
    let ties = 0;
    for (let j = 0; j < n; j++) if (cost[j] === min) ties++;
    let k = ties === 1 ? 0 : this.#randomInt(ties);
    for (let j = 0; j < n; j++) if (cost[j] === min && k-- === 0) return j;
    return 0;
  }

  retain(replicas: readonly W[]): void {
    this.tree.retainTenants(replicas);
  }
}
