/**
 * @module
 * The mesh's counters (`mesh.ts`'s `MeshCounts`) as metric families, `gateplane_mesh_*`: one
 * unlabelled counter each, for the host (the mesh lives in the process that holds the routing state).
 */
import { METRICS, type MetricSpec } from "../observe/catalog.ts";
import type { MetricFamily } from "../observe/families.ts";
import type { MeshCounts } from "./mesh.ts";

const FAMILIES = [
  [METRICS.meshDigestsSent, "digestsSent"],
  [METRICS.meshDigestsReceived, "digestsReceived"],
  [METRICS.meshDigestsRefused, "digestsRefused"],
  [METRICS.meshRoutesSent, "routesSent"],
  [METRICS.meshRoutesSampledOut, "sampledOut"],
  [METRICS.meshRoutesReceived, "routesReceived"],
  [METRICS.meshPrefixesImported, "imported"],
  [METRICS.meshChargesApplied, "chargesReceived"],
  [METRICS.meshChargesDropped, "chargesDropped"],
] as const satisfies readonly (readonly [MetricSpec, keyof MeshCounts])[];

/** Every mesh family (zero before any digest, as the registry's other families). */
export function meshFamilies(counts: Readonly<MeshCounts>): MetricFamily[] {
  return FAMILIES.map(([spec, key]) => ({
    name: spec.name,
    help: spec.help,
    type: "counter",
    samples: [{ labels: [], value: counts[key] }],
  }));
}
