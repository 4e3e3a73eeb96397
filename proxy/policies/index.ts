/**
 * @module
 * The policy a service's effective router asks for (`schema/router.ts`); no router is round robin.
 */
import {
  cacheAwareOptions,
  leastLoadOptions,
  prefixLoadOptions,
  type RouterConfig,
  routerLoad,
} from "../../schema/router.ts";
import { CacheAware } from "./cache-aware.ts";
import { LazyPolicy } from "./lazy-policy.ts";
import { LeastLoad } from "./least-load.ts";
import { fleetLoadOf, type Loaded, loadOf, type Policy, randomInt } from "./policy.ts";
import { PowerOfTwo } from "./power-of-two.ts";
import { PrefixLoad } from "./prefix-load.ts";
import { RandomPolicy } from "./random.ts";
import { RoundRobin } from "./round-robin.ts";

export type { Loaded, Policy } from "./policy.ts";

/**
 * A serving process's own policy for a service whose decisions the host's routing state makes
 * (`sharesState`): made at its first decision (`lazy-policy.ts`), which is a fallback.
 */
export function createFallbackPolicy<W extends Loaded>(router: RouterConfig, replicas: readonly W[]): Policy<W> {
  const policy = router.policy ?? "round_robin";
  const needsText = policy === "cache_aware" || policy === "prefix_load";
  return new LazyPolicy(policy, needsText, replicas, (current) => createPolicy(router, current));
}

export function createPolicy<W extends Loaded>(router: RouterConfig | null, replicas: readonly W[]): Policy<W> {
  switch (router?.policy ?? "round_robin") {
    case "cache_aware":
      return new CacheAware(cacheAwareOptions(router), replicas, Date.now(), randomInt, loadOf(routerLoad(router)));
    case "power_of_two":
      return new PowerOfTwo(randomInt, loadOf(routerLoad(router)));
    case "least_load":
      return new LeastLoad(leastLoadOptions(router));
    case "prefix_load":
      return new PrefixLoad(
        prefixLoadOptions(router),
        replicas,
        Date.now(),
        Math.random,
        fleetLoadOf(routerLoad(router)),
      );
    case "random":
      return new RandomPolicy();
    default:
      return new RoundRobin();
  }
}
