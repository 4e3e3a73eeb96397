/**
 * @module
 * `router:` of a gateway (and a service's override): SGLang's load-balancing policies and their
 * tunables, with the defaults of SGLang's command line (v0.2–0.3 `router_args.py`; SMG's for
 * least_load), which the built-in balancer (`proxy/policies/`) and an external SGLang Model Gateway
 * both follow, plus `prefix_load`, Gateplane's own policy (built-in only). Every tunable belongs to
 * some policies ({@link OPTION_POLICIES}) and is refused for the others, where it would silently do
 * nothing.
 */
import * as v from "valibot";
import { describeType, expected, mapping, oneOf } from "./issues.ts";
import * as L from "./limits.ts";

export const ROUTER_POLICIES = [
  "cache_aware",
  "power_of_two",
  "random",
  "round_robin",
  "least_load",
  "prefix_load",
] as const;
export type RouterPolicy = (typeof ROUTER_POLICIES)[number];

/** Policies only the built-in balancer has: an external SGLang Model Gateway is never asked for them. */
export const BUILT_IN_ONLY_POLICIES: readonly RouterPolicy[] = ["prefix_load"];

/** Which load a policy compares: the gateway's own in-flight count, or `combinedLoad` (engine + sent since). */
export const ROUTER_LOADS = ["in_flight", "engine"] as const;
export type RouterLoad = (typeof ROUTER_LOADS)[number];

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

/** least_load's tunables, named as SMG's flags (`--least-load-kv-pressure-weight` …), SMG's defaults. */
export interface LeastLoadOptions {
  /** λ in seconds: weight of the KV-pressure term λ·k/(1−k). */
  least_load_kv_pressure_weight: number;
  /** Tokens per second assumed for an engine (the gateway's scrape reports no throughput). */
  least_load_default_throughput: number;
  /** Prefill tokens assumed per request: per queued request, and per pick since the last scrape. */
  least_load_mean_prefill_tokens: number;
}

export const LEAST_LOAD_DEFAULTS: Readonly<LeastLoadOptions> = {
  least_load_kv_pressure_weight: 0.15,
  least_load_default_throughput: 2000,
  least_load_mean_prefill_tokens: 1024,
};

/** prefix_load's tunables (Gateplane's own; `proxy/policies/prefix-load.ts`). */
export interface PrefixLoadOptions {
  /**
   * Characters of prefill one request of load is worth: a replica's cost is the characters of the
   * request it does not hold plus this × its load. Higher spreads more, lower sticks more.
   */
  prefix_load_request_cost: number;
  /** Softmax temperature over min–max normalised costs; 0 picks the cheapest (ties at random). */
  prefix_load_temperature: number;
}

export const PREFIX_LOAD_DEFAULTS: Readonly<PrefixLoadOptions> = {
  prefix_load_request_cost: 128,
  prefix_load_temperature: 0,
};

/**
 * The load each policy compares when `load:` is not written. cache_aware and power_of_two keep
 * SGLang's in-flight count (files written before `load:` behave exactly as before). prefix_load, new,
 * compares `combinedLoad`: with this gateway as the replicas' only client it IS the in-flight count
 * (the simulator's rows are identical, `bench/router.ts`), and it also counts what other gateway
 * replicas and direct clients put on an engine, which the in-flight count cannot see.
 */
export const DEFAULT_LOAD: Partial<Record<RouterPolicy, RouterLoad>> = {
  cache_aware: "in_flight",
  power_of_two: "in_flight",
  prefix_load: "engine",
};

type Tunables = CacheAwareOptions & LeastLoadOptions & PrefixLoadOptions & { load: RouterLoad };

/** The policies each tunable applies to (the prefix tree's budget and eviction serve both tree policies). */
export const OPTION_POLICIES: { readonly [K in keyof Tunables]: readonly RouterPolicy[] } = {
  cache_threshold: ["cache_aware"],
  balance_abs_threshold: ["cache_aware"],
  balance_rel_threshold: ["cache_aware"],
  eviction_interval: ["cache_aware", "prefix_load"],
  max_tree_size: ["cache_aware", "prefix_load"],
  least_load_kv_pressure_weight: ["least_load"],
  least_load_default_throughput: ["least_load"],
  least_load_mean_prefill_tokens: ["least_load"],
  prefix_load_request_cost: ["prefix_load"],
  prefix_load_temperature: ["prefix_load"],
  load: ["cache_aware", "power_of_two", "prefix_load"],
};

const TUNABLES = Object.keys(OPTION_POLICIES) as (keyof Tunables)[];

/** Defaults filled in for a policy (`load` is not: absent means {@link DEFAULT_LOAD}, as before it existed). */
const FILLED: { readonly [K in keyof Tunables]?: Tunables[K] } = {
  ...CACHE_AWARE_DEFAULTS,
  ...LEAST_LOAD_DEFAULTS,
  ...PREFIX_LOAD_DEFAULTS,
};

/**
 * What a parsed `router:` holds: the tunables of its policy, each filled with its default (`load`
 * only when written), and none of another policy's.
 */
export type RouterConfig = { type: "sglang"; policy: RouterPolicy } & Partial<Tunables> & Partial<PdRouting>;

/**
 * Prefill/decode disaggregation (docs/pd.md): requests go to a prefill and a decode replica at once,
 * each picked by its own policy, as SMG's `--pd-disaggregation --prefill-policy … --decode-policy …`.
 * Present in a parsed `router:` only when `pd_disaggregation: true` was written; then `policy` is the
 * prefill policy (what the proxy reads the body for), and the tunables of either policy are accepted.
 */
export interface PdRouting {
  pd_disaggregation: true;
  /** Picks the prefill replica; default: `policy` as written, else cache_aware (SMG's fallback). */
  prefill_policy: RouterPolicy;
  /** Picks the decode replica; default: `policy` as written, else power_of_two (decode is load-bound). */
  decode_policy: RouterPolicy;
}

/** The PD options of an effective router, or null when it does not disaggregate. */
export const pdRouting = (router: Partial<PdRouting> | null): PdRouting | null =>
  router?.pd_disaggregation === true && router.prefill_policy && router.decode_policy
    ? { pd_disaggregation: true, prefill_policy: router.prefill_policy, decode_policy: router.decode_policy }
    : null;

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
  policy: v.optional(v.picklist(ROUTER_POLICIES, oneOf(ROUTER_POLICIES))),
  pd_disaggregation: v.optional(v.boolean(expected("true or false"))),
  prefill_policy: v.optional(v.picklist(ROUTER_POLICIES, oneOf(ROUTER_POLICIES))),
  decode_policy: v.optional(v.picklist(ROUTER_POLICIES, oneOf(ROUTER_POLICIES))),
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
  least_load_kv_pressure_weight: v.optional(
    number(
      "a number of seconds ≥ 0",
      (n) => n >= 0 && n <= L.MAX_LEAST_LOAD_KV_PRESSURE_WEIGHT,
      `must be between 0 and ${L.MAX_LEAST_LOAD_KV_PRESSURE_WEIGHT} seconds`,
    ),
  ),
  least_load_default_throughput: v.optional(
    number(
      "a number of tokens per second > 0",
      (n) => n > 0 && n <= L.MAX_LEAST_LOAD_DEFAULT_THROUGHPUT,
      `must be above 0 and at most ${L.MAX_LEAST_LOAD_DEFAULT_THROUGHPUT} tokens per second`,
    ),
  ),
  least_load_mean_prefill_tokens: v.optional(
    integer(
      1,
      L.MAX_LEAST_LOAD_MEAN_PREFILL_TOKENS,
      `must be a whole number of tokens from 1 to ${L.MAX_LEAST_LOAD_MEAN_PREFILL_TOKENS}`,
    ),
  ),
  prefix_load_request_cost: v.optional(
    integer(
      0,
      L.MAX_PREFIX_LOAD_REQUEST_COST,
      `must be a whole number of characters from 0 to ${L.MAX_PREFIX_LOAD_REQUEST_COST}`,
    ),
  ),
  prefix_load_temperature: v.optional(
    number(
      "a number ≥ 0",
      (n) => n >= 0 && n <= L.MAX_PREFIX_LOAD_TEMPERATURE,
      `must be between 0 and ${L.MAX_PREFIX_LOAD_TEMPERATURE}`,
    ),
  ),
  load: v.optional(v.picklist(ROUTER_LOADS, oneOf(ROUTER_LOADS))),
};

const policiesOf = (key: keyof Tunables) => {
  const policies = OPTION_POLICIES[key];
  return policies.length === 1 ? `policy ${policies[0]} only` : `policies ${policies.join(", ")} only`;
};

/**
 * `router:` as written. Tunables are refused for other policies (they would silently do nothing) and
 * filled with their defaults for their own, so `{type: sglang}` and the same with the defaults
 * written out are one configuration.
 */
function routerSchema<E extends v.ObjectEntries>(accepted: E) {
  return v.pipe(
    mapping(accepted),
    v.rawTransform(({ dataset, addIssue, NEVER }): RouterConfig => {
      const input = dataset.value as Partial<Tunables & PdRouting> & {
        type: "sglang";
        policy?: RouterPolicy;
        pd_disaggregation?: boolean;
      };
      const { type } = input;
      const pd = input.pd_disaggregation === true;
      let refused = false;
      const refuse = (key: string, value: unknown, message: string) => {
        refused = true;
        addIssue({ message, path: [{ type: "object", origin: "value", input, key, value }] });
      };
      if (!pd) {
        for (const key of ["prefill_policy", "decode_policy"] as const) {
          const value = input[key];
          if (value !== undefined) refuse(key, value, "applies with pd_disaggregation: true only");
        }
      }
      const prefill = pd ? (input.prefill_policy ?? input.policy ?? "cache_aware") : undefined;
      const decode = pd ? (input.decode_policy ?? input.policy ?? "power_of_two") : undefined;
      // Disaggregated, `policy` is the prefill side's: what reads the request's text.
      const policy = prefill ?? input.policy ?? "cache_aware";
      const used: RouterPolicy[] = pd ? [prefill!, decode!] : [policy];
      const out: RouterConfig = { type, policy };
      if (pd) Object.assign(out, { pd_disaggregation: true, prefill_policy: prefill, decode_policy: decode });
      for (const key of TUNABLES) {
        const value = input[key];
        if (!used.some((p) => OPTION_POLICIES[key].includes(p))) {
          if (value === undefined) continue;
          const which = pd
            ? `policies are ${describeType(prefill)} and ${describeType(decode)}`
            : `policy is ${describeType(policy)}`;
          refuse(key, value, `applies to ${policiesOf(key)} (${which})`);
          continue;
        }
        const filled = value ?? FILLED[key];
        if (filled !== undefined) (out as Record<string, unknown>)[key] = filled;
      }
      return refused ? NEVER : out;
    }),
  );
}

const { pd_disaggregation: _pd, prefill_policy: _prefill, decode_policy: _decode, ...gatewayEntries } = entries;

/** A service's `router:` (prefill/decode disaggregation is per service, as dstack's). */
export const Router = routerSchema(entries);

/** A gateway's `router:`: the same without the PD fields (unknown there, as in dstack). */
export const GatewayRouter = routerSchema(gatewayEntries);

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
  least_load_kv_pressure_weight: entries.least_load_kv_pressure_weight,
  least_load_default_throughput: entries.least_load_default_throughput,
  least_load_mean_prefill_tokens: entries.least_load_mean_prefill_tokens,
  prefix_load_request_cost: entries.prefix_load_request_cost,
  prefix_load_temperature: entries.prefix_load_temperature,
  load: entries.load,
  // Absent (also from older control planes): not disaggregated.
  pd_disaggregation: v.optional(v.literal(true)),
  prefill_policy: v.optional(v.picklist(ROUTER_POLICIES)),
  decode_policy: v.optional(v.picklist(ROUTER_POLICIES)),
});

/** The cache_aware options of an effective router: its own values over SGLang's defaults. */
export function cacheAwareOptions(router: Partial<CacheAwareOptions> | null): CacheAwareOptions {
  const out = { ...CACHE_AWARE_DEFAULTS };
  if (router) for (const key of CACHE_AWARE_OPTIONS) out[key] = router[key] ?? out[key];
  return out;
}

/** least_load's options of an effective router: its own values over SMG's defaults. */
export function leastLoadOptions(router: Partial<LeastLoadOptions> | null): LeastLoadOptions {
  return {
    least_load_kv_pressure_weight:
      router?.least_load_kv_pressure_weight ?? LEAST_LOAD_DEFAULTS.least_load_kv_pressure_weight,
    least_load_default_throughput:
      router?.least_load_default_throughput ?? LEAST_LOAD_DEFAULTS.least_load_default_throughput,
    least_load_mean_prefill_tokens:
      router?.least_load_mean_prefill_tokens ?? LEAST_LOAD_DEFAULTS.least_load_mean_prefill_tokens,
  };
}

/** prefix_load's options: its own and the tree's (budget, eviction) over their defaults. */
export function prefixLoadOptions(
  router: Partial<PrefixLoadOptions & CacheAwareOptions> | null,
): PrefixLoadOptions & Pick<CacheAwareOptions, "eviction_interval" | "max_tree_size"> {
  return {
    prefix_load_request_cost: router?.prefix_load_request_cost ?? PREFIX_LOAD_DEFAULTS.prefix_load_request_cost,
    prefix_load_temperature: router?.prefix_load_temperature ?? PREFIX_LOAD_DEFAULTS.prefix_load_temperature,
    eviction_interval: router?.eviction_interval ?? CACHE_AWARE_DEFAULTS.eviction_interval,
    max_tree_size: router?.max_tree_size ?? CACHE_AWARE_DEFAULTS.max_tree_size,
  };
}

/** The load a policy compares: `load:` as written, else the policy's default (in-flight for the rest). */
export const routerLoad = (router: RouterConfig | null): RouterLoad =>
  router?.load ?? (router ? DEFAULT_LOAD[router.policy] : undefined) ?? "in_flight";

/** Whether the policy routes on the request's text (the proxy reads and caps bodies only for these). */
export const routesOnText = (router: RouterConfig | null): boolean =>
  router?.policy === "cache_aware" || router?.policy === "prefix_load";
