/**
 * @module
 * A PD service's routes (docs/pd.md): its prefill replicas and its decode replicas, each behind a
 * balancer with its side's policy (`router.prefill_policy`, `router.decode_policy`). The replicas are
 * the service's own `ReplicaState`s, so health (passive, active, breaker) and in-flight counts are one
 * per replica whichever balancer sees it; each side's load is its own replicas' counts. Each side is
 * also a `RoutedService` (`prefillSide`, `decodeSide`): the routing gate decides it in the host's
 * routing state under its own key (`pd-side.ts`), as it decides a co-located service.
 */
import type { ConfigService } from "../../schema/config-document.ts";
import { sameJson } from "../../schema/json.ts";
import { pdRouting, type RouterConfig } from "../../schema/router.ts";
import { pdUnroutable } from "../../schema/service.ts";
import type { Balancer, ReplicaState } from "../balancer.ts";
import { createPolicy } from "../policies/index.ts";
import type { Policy } from "../policies/policy.ts";
import type { RoutedService } from "../routing-gate.ts";
import { pdSideKey, pdSideRouter } from "./pd-side.ts";

export interface PdRoute {
  readonly prefill: Balancer;
  readonly decode: Balancer;
  /** The sides as the routing gate decides them (`routing-gate.ts`): `decode` and `prefill` under their keys. */
  readonly prefillSide: RoutedService;
  readonly decodeSide: RoutedService;
  /** Each prefill replica's `bootstrap_port` (null: none is sent), by id. */
  readonly bootstrapPorts: ReadonlyMap<string, number | null>;
  /** Why the service cannot route (fewer than one replica of each role), else null. */
  readonly unroutable: string | null;
}

/** Null unless the service's router disaggregates. Policies keep their state while the router is unchanged. */
export function buildPdRoute(
  service: ConfigService,
  replicas: readonly ReplicaState[],
  before: PdRoute | null,
  beforeRouter: RouterConfig | null,
  balancer: (members: readonly ReplicaState[], policy: Policy<ReplicaState>) => Balancer,
): PdRoute | null {
  const router = service.router;
  const pd = pdRouting(router);
  if (!router || !pd) return null;
  const roles = new Map(service.replicas.map((r) => [r.id, r] as const));
  const prefill = replicas.filter((r) => roles.get(r.id)?.role === "prefill");
  const decode = replicas.filter((r) => roles.get(r.id)?.role === "decode");
  const keep = before !== null && sameJson(beforeRouter, router);
  const side = (members: readonly ReplicaState[], policy: RouterConfig["policy"], previous: Balancer | undefined) => {
    if (keep && previous) {
      previous.policy.retain(members);
      return balancer(members, previous.policy);
    }
    return balancer(members, createPolicy({ ...router, policy }, members));
  };
  const prefillBalancer = side(prefill, pd.prefill_policy, before?.prefill);
  const decodeBalancer = side(decode, pd.decode_policy, before?.decode);
  return {
    prefill: prefillBalancer,
    decode: decodeBalancer,
    prefillSide: {
      name: pdSideKey(service.name, "prefill"),
      router: pdSideRouter(router, "prefill"),
      balancer: prefillBalancer,
    },
    decodeSide: {
      name: pdSideKey(service.name, "decode"),
      router: pdSideRouter(router, "decode"),
      balancer: decodeBalancer,
    },
    bootstrapPorts: new Map(prefill.map((r) => [r.id, roles.get(r.id)?.bootstrap_port ?? null])),
    unroutable: pdUnroutable(service.name, prefill.length, decode.length),
  };
}

/** The paths SGLang's PD router serves disaggregated (POST); everything else goes to any replica. */
export const PD_PATHS: ReadonlySet<string> = new Set(["/generate", "/v1/chat/completions", "/v1/completions"]);

/** Whether a request (method, path with its query) is one PD routing serves. */
export function isPdRequest(method: string | undefined, path: string): boolean {
  if (method !== "POST") return false;
  const q = path.indexOf("?");
  return PD_PATHS.has(q === -1 ? path : path.slice(0, q));
}
