/**
 * @module
 * A PD service's two sides as routing sees them (docs/pd.md): the router each side's policy is made
 * from (the service's router with `prefill_policy` or `decode_policy` as its policy, its tunables
 * shared), and the name a side is decided under in the host's routing state (`routing-state.ts`).
 */
import type { RouterConfig } from "../../schema/router.ts";

export type PdSide = "prefill" | "decode";

/** The router of one side: the service's, with that side's policy. */
export function pdSideRouter(router: RouterConfig, side: PdSide): RouterConfig {
  const policy = side === "prefill" ? router.prefill_policy : router.decode_policy;
  return { ...router, policy: policy ?? router.policy };
}

/** The host routing state's key of a side (service names cannot hold a NUL). */
export const pdSideKey = (service: string, side: PdSide): string => `${service}\u0000${side}`;
