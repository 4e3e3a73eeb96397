/**
 * @module
 * SMG's least_load (`model_gateway/src/policies/least_load.rs`): the candidate with the least
 * expected wait, in seconds,
 *
 *     score = (queued_tok + inflight_tok) / throughput + λ · k / (1 − k)
 *
 * argmin, the first candidate on a tie (strict `<`, as SMG). What the gateway's scrape has is less
 * than SMG's `/v1/loads` (`EngineLoad`: running, waiting, kvUsage), so:
 * - `queued_tok`: SMG sums the engine's `num_waiting_uncached_tokens`; `/metrics` has no such gauge,
 *   so it is `waiting × mean_prefill_tokens` (cached prefixes are not discounted);
 * - `throughput`: SMG uses the engine's `gen_throughput` when positive; the scrape has none, so it is
 *   always `least_load_default_throughput`;
 * - `k`: `kvUsage` clamped to [0, 0.999]; an engine that exports no KV usage counts k = 0 (SMG's
 *   monitor would call that replica unavailable and fall back to its in-flight count — here its
 *   queue still counts);
 * - `inflight_tok`: `mean_prefill_tokens` per pick of this policy since the replica's last scrape
 *   (SMG's HTTP path; reset when a scrape with a new `at` arrives), which keeps a stale scrape from
 *   sending a whole interval's arrivals to one replica.
 * A replica without a scrape while others have one scores `inFlight × mean_prefill_tokens /
 * throughput` (SMG's peer-mean throughput is the default here); when none has one, it is
 * join-shortest-queue on the in-flight count.
 */
import type { LeastLoadOptions } from "../../schema/router.ts";
import type { Loaded, Policy } from "./policy.ts";

interface SinceScrape {
  /** `EngineLoad.at` of the scrape the picks count from. */
  at: number;
  picks: number;
}

export class LeastLoad<W extends Loaded> implements Policy<W> {
  readonly name = "least_load";
  readonly needsText = false;
  readonly options: Readonly<LeastLoadOptions>;
  readonly #since = new Map<W, SinceScrape>();

  constructor(options: LeastLoadOptions) {
    this.options = options;
  }

  select(candidates: readonly W[]): W {
    // One candidate: SMG returns it before scoring, without crediting it.
    if (candidates.length === 1) return candidates[0]!;
    let anyScrape = false;
    for (const c of candidates) if (c.engine) anyScrape = true;
    let best = candidates[0]!;
    let bestScore = this.score(best, anyScrape);
    for (let i = 1; i < candidates.length; i++) {
      const c = candidates[i]!;
      const s = this.score(c, anyScrape);
      if (s < bestScore) {
        best = c;
        bestScore = s;
      }
    }
    return this.#credit(best);
  }

  /** The candidate's expected wait (seconds; in requests when no candidate has a scrape). */
  score(w: W, anyScrape: boolean): number {
    const { least_load_kv_pressure_weight: lambda, least_load_default_throughput: throughput } = this.options;
    const p = this.options.least_load_mean_prefill_tokens;
    const e = w.engine;
    if (!e) return anyScrape ? (w.inFlight * p) / throughput : w.inFlight;
    const since = this.#since.get(w);
    const picks = since !== undefined && since.at === e.at ? since.picks : 0;
    const k = Math.min(0.999, Math.max(0, e.kvUsage ?? 0));
    return (e.waiting * p + picks * p) / throughput + (lambda * k) / (1 - k);
  }

  #credit(w: W): W {
    const at = w.engine?.at;
    if (at === undefined) return w;
    const since = this.#since.get(w);
    if (since === undefined) this.#since.set(w, { at, picks: 1 });
    else if (since.at !== at) {
      since.at = at;
      since.picks = 1;
    } else since.picks++;
    return w;
  }

  retain(replicas: readonly W[]): void {
    const keep = new Set(replicas);
    for (const w of this.#since.keys()) if (!keep.has(w)) this.#since.delete(w);
  }
}
