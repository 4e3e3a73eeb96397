/**
 * @module
 * SGLang's cache_aware (v0.3 semantics, after PR #14650):
 * 1. imbalanced — max − min in-flight > `balance_abs_threshold` AND max > min × `balance_rel_threshold`
 *    over the candidates — → the least-loaded candidate;
 * 2. else the tree's longest prefix match: a match rate (matched / total code points) strictly above
 *    `cache_threshold` → the worker that holds it; otherwise (a miss, or empty text) the least-loaded
 *    candidate, not the smallest tree (the "death spiral" fix).
 * Ties on the least load are broken at random (SGLang PR #33138 does so on a miss; the imbalance
 * branch here shares the helper, where ties are rare and the first index has no merit either).
 * The text is then inserted for the chosen worker in both branches. One tree per service (a service
 * serves one model, so this is SGLang's tree per model).
 *
 * Load is the in-flight count by default (SGLang's); `router.load: engine` compares `combinedLoad`
 * (the engine's running + waiting at its last scrape plus what was sent since) in both branches.
 *
 * One deliberate difference: when the matched worker is not a candidate (ejected, or already tried
 * by this request), SGLang falls back to the first healthy worker without learning; here it is a
 * miss, so the prefix moves to the least-loaded candidate and the tree learns where it went.
 */
import type { CacheAwareOptions } from "../../schema/router.ts";
import {
  type Agreement,
  agreementKey,
  inFlightLoad,
  type Loaded,
  type LoadOf,
  leastLoaded,
  type Policy,
  type RandomInt,
  randomInt,
  rendezvous,
} from "./policy.ts";
import { EvictionSchedule, RadixTree } from "./radix-tree.ts";

export interface CacheAwareCounts {
  hits: number;
  misses: number;
  /** Decisions taken by the imbalance branch (SGLang's `load_balancing_events_total`). */
  balanced: number;
  evictions: number;
}

export class CacheAware<W extends Loaded> implements Policy<W> {
  readonly name = "cache_aware";
  readonly needsText = true;
  readonly options: Readonly<CacheAwareOptions>;
  readonly tree = new RadixTree<W>();
  readonly counts: CacheAwareCounts = { hits: 0, misses: 0, balanced: 0, evictions: 0 };
  readonly #eviction: EvictionSchedule;
  readonly #random: RandomInt;
  readonly #load: LoadOf;
  /** Set while this host has gateway peers (`policy.ts`'s `Agreement`): a miss goes where they would send it. */
  agreement: Agreement<W> | null = null;

  constructor(
    options: CacheAwareOptions,
    replicas: readonly W[],
    now = Date.now(),
    random: RandomInt = randomInt,
    load: LoadOf = inFlightLoad,
  ) {
    this.options = options;
    this.#random = random;
    this.#load = load;
    this.#eviction = new EvictionSchedule(now);
    for (const w of replicas) this.tree.addTenant(w);
  }

  select(candidates: readonly W[], text: string, now: number): W {
    const { eviction_interval, max_tree_size } = this.options;
    if (this.#eviction.run(this.tree, eviction_interval, max_tree_size, now)) this.counts.evictions++;
    const chosen = this.#choose(candidates, text);
    if (text !== "") this.tree.insert(text, chosen);
    return chosen;
  }

  #choose(candidates: readonly W[], text: string): W {
    const loadOf = this.#load;
    let max = loadOf(candidates[0]!);
    let min = max;
    for (let i = 1; i < candidates.length; i++) {
      const load = loadOf(candidates[i]!);
      if (load > max) max = load;
      if (load < min) min = load;
    }
    const { balance_abs_threshold, balance_rel_threshold, cache_threshold } = this.options;
    if (max - min > balance_abs_threshold && max > min * balance_rel_threshold) {
      this.counts.balanced++;
      return leastLoaded(candidates, this.#random, loadOf);
    }
    const match = this.tree.prefixMatch(text);
    const rate = match.total === 0 ? 0 : match.matched / match.total;
    if (rate > cache_threshold && match.tenant !== undefined && candidates.includes(match.tenant)) {
      this.counts.hits++;
      return match.tenant;
    }
    this.counts.misses++;
    const agreement = this.agreement;
    if (agreement !== null && text !== "") {
      const near = min + agreement.tolerance;
      const key = agreementKey(text, match.matched);
      const i = rendezvous(
        candidates.length,
        key,
        (j) => loadOf(candidates[j]!) <= near,
        (j) => agreement.id(candidates[j]!),
      );
      return candidates[i]!;
    }
    return leastLoaded(candidates, this.#random, loadOf);
  }

  retain(replicas: readonly W[]): void {
    this.tree.retainTenants(replicas);
  }
}
