/**
 * @module
 * `router:` of a gateway (and a service's override): SGLang's load-balancing policies and the
 * cache_aware tunables, with the defaults of SGLang's command line (v0.2–0.3 `router_args.py`), which
 * the built-in balancer (`proxy/policies/`) and an external SGLang Model Gateway both follow.
 */
import * as v from "valibot";
import { describeType, expected, mapping, oneOf } from "./issues.ts";
import * as L from "./limits.ts";

export const ROUTER_POLICIES = ["cache_aware", "power_of_two", "random", "round_robin"] as const;
export type RouterPolicy = (typeof ROUTER_POLICIES)[number];

/** The cache_aware tunables, named as SGLang's flags (`--cache-threshold` …). */
export interface CacheAwareOptions {
  /** A prefix match above this share of the request's characters (strict `>`) routes to its worker. */
  cache_threshold: number;
  /** Imbalanced when max − min in-flight load exceeds this… */
  balance_abs_threshold: number;
  /** …and max exceeds min × this (both must hold). */
  balance_rel_threshold: number;
  /** Seconds between evictions of the prefix tree; 0 disables eviction. */
  eviction_interval: number;
  /** Characters of routing history kept per worker (LRU leaves evicted beyond it). */
  max_tree_size: number;
}

export const CACHE_AWARE_DEFAULTS: Readonly<CacheAwareOptions> = {
  cache_threshold: 0.3,
  balance_abs_threshold: 64,
  balance_rel_threshold: 1.5,
  eviction_interval: 120,
  max_tree_size: 2 ** 26,
};

export const CACHE_AWARE_OPTIONS = Object.keys(CACHE_AWARE_DEFAULTS) as (keyof CacheAwareOptions)[];

/** What a parsed `router:` holds: the five tunables are present exactly when the policy is cache_aware. */
export type RouterConfig = { type: "sglang"; policy: RouterPolicy } & Partial<CacheAwareOptions>;

export { MAX_TREE_SIZE_LIMIT } from "./limits.ts";

const number = (what: string, check: (n: number) => boolean, message: string) =>
  v.pipe(v.number(expected(what)), v.finite(expected(what)), v.check(check, message));
const integer = (min: number, max: number, message: string) =>
  v.pipe(
    v.number(expected("an integer")),
    v.integer(expected("an integer")),
    v.minValue(min, message),
    v.maxValue(max, message),
  );

const entries = {
  type: v.picklist(["sglang"], oneOf(["sglang"])),
  policy: v.optional(v.picklist(ROUTER_POLICIES, oneOf(ROUTER_POLICIES)), "cache_aware"),
  cache_threshold: v.optional(number("a number between 0 and 1", (n) => n >= 0 && n <= 1, "must be between 0 and 1")),
  balance_abs_threshold: v.optional(
    integer(
      0,
      L.MAX_BALANCE_ABS_THRESHOLD,
      `must be a whole number of requests from 0 to ${L.MAX_BALANCE_ABS_THRESHOLD}`,
    ),
  ),
  balance_rel_threshold: v.optional(
    number(
      "a number ≥ 1",
      (n) => n >= 1 && n <= L.MAX_BALANCE_REL_THRESHOLD,
      `must be between 1 and ${L.MAX_BALANCE_REL_THRESHOLD}`,
    ),
  ),
  eviction_interval: v.optional(
    integer(
      0,
      L.MAX_EVICTION_INTERVAL_SECONDS,
      `must be between 0 (no eviction) and ${L.MAX_EVICTION_INTERVAL_SECONDS} seconds`,
    ),
  ),
  max_tree_size: v.optional(
    integer(1, L.MAX_TREE_SIZE_LIMIT, `must be between 1 and ${L.MAX_TREE_SIZE_LIMIT} characters`),
  ),
};

/**
 * `router:` as written. Tunables are refused for other policies (they would silently do nothing) and
 * filled with SGLang's defaults for cache_aware, so `{type: sglang}` and the same with the defaults
 * written out are one configuration.
 */
export const Router = v.pipe(
  mapping(entries),
  v.rawTransform(({ dataset, addIssue, NEVER }): RouterConfig => {
    const input = dataset.value;
    const { type, policy } = input;
    if (policy !== "cache_aware") {
      const stray = CACHE_AWARE_OPTIONS.filter((key) => input[key] !== undefined);
      for (const key of stray) {
        addIssue({
          message: `applies to policy cache_aware only (policy is ${describeType(policy)})`,
          path: [{ type: "object", origin: "value", input, key, value: input[key] }],
        });
      }
      return stray.length > 0 ? NEVER : { type, policy };
    }
    const out: RouterConfig = { type, policy };
    for (const key of CACHE_AWARE_OPTIONS) out[key] = input[key] ?? CACHE_AWARE_DEFAULTS[key];
    return out;
  }),
);

/**
 * The effective router in a configuration document: the same bounds as `router:` (one set on both
 * sides of the agent boundary), tunables optional so documents from before them still parse.
 */
export const RouterDocument = v.object({
  type: v.literal("sglang"),
  policy: v.picklist(ROUTER_POLICIES),
  cache_threshold: entries.cache_threshold,
  balance_abs_threshold: entries.balance_abs_threshold,
  balance_rel_threshold: entries.balance_rel_threshold,
  eviction_interval: entries.eviction_interval,
  max_tree_size: entries.max_tree_size,
});

/** The cache_aware options of an effective router: its own values over SGLang's defaults. */
export function cacheAwareOptions(router: Partial<CacheAwareOptions> | null): CacheAwareOptions {
  const out = { ...CACHE_AWARE_DEFAULTS };
  if (router) for (const key of CACHE_AWARE_OPTIONS) out[key] = router[key] ?? out[key];
  return out;
}
