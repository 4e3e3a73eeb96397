/**
 * @module
 * The policy a service's effective router asks for (`schema/router.ts`); no router is round robin.
 */
import { cacheAwareOptions, type RouterConfig } from "../../schema/router.ts";
import { CacheAware } from "./cache-aware.ts";
import type { Loaded, Policy } from "./policy.ts";
import { PowerOfTwo } from "./power-of-two.ts";
import { RandomPolicy } from "./random.ts";
import { RoundRobin } from "./round-robin.ts";

export type { Loaded, Policy } from "./policy.ts";

export function createPolicy<W extends Loaded>(router: RouterConfig | null, replicas: readonly W[]): Policy<W> {
  switch (router?.policy ?? "round_robin") {
    case "cache_aware":
      return new CacheAware(cacheAwareOptions(router), replicas);
    case "power_of_two":
      return new PowerOfTwo();
    case "random":
      return new RandomPolicy();
    default:
      return new RoundRobin();
  }
}
