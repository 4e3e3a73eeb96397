/**
 * @module
 * A PD service's autoscaling per role as `gateplane service get` shows it (docs/autoscaling.md):
 * for prefill and decode, the registered replicas over what the autoscaler wants and its reason.
 * Everything is the API's `scaling.roles`; nothing is recomputed here.
 */
import type { Service } from "../schema/service-api.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

/** Nothing for a service not scaled per role (co-located, or an older control plane). */
export function roleScalingLines(service: Pick<Service, "scaling">, style: Style): string[] {
  const roles = service.scaling?.roles;
  if (!roles) return [];
  const rows = (["prefill", "decode"] as const).map((role) => {
    const r = roles[role];
    const desired = r.desired_replicas === null ? "-" : String(r.desired_replicas);
    return { cells: [role, `${r.current_replicas}/${desired}`, r.reason ?? "not decided yet"] };
  });
  return ["", ...renderTable(["ROLE", "REPLICAS", "SCALING"], rows, style)];
}
