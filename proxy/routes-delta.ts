/**
 * @module
 * A delta applied to a routing table: the maps are copied and only the changed and removed services'
 * routes are rebuilt, so every other service keeps its route object, and with it its balancer,
 * policy (a cache_aware tree), replica state and admission queues. What the table derives from every
 * route (origins, zones, the names) is recomputed by a walk of the routes, which costs microseconds
 * per service; building a route (policy, rate-limit rules, resilience) is what a delta must not
 * repeat for the 9,999 services it does not touch.
 *
 * The result equals `buildRoutingTable(merged, previous)` (`routes.test.ts`'s property test): the
 * model owners follow the merged document's order (the first service declaring a model wins).
 */
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { assembleTable, buildRoute, type RoutingTable, type ServiceRoute, type TableDeps } from "./routes.ts";

/** `previous` with `delta` applied; `doc` is the merged document (`config-merge.ts`). */
export function updateRoutingTable(
  previous: RoutingTable,
  delta: ConfigDelta,
  doc: ConfigDocument,
  deps: TableDeps,
): RoutingTable {
  const byName = new Map(previous.byName);
  const byHost = new Map(previous.byHost);
  const byModel = new Map(previous.byModel);
  const models = new Set<string>();
  const drop = (name: string) => {
    const old = byName.get(name);
    if (!old) return;
    byName.delete(name);
    if (byHost.get(old.host) === old) byHost.delete(old.host);
    if (old.model) models.add(old.model.name);
  };
  for (const name of delta.removed) drop(name);
  const befores = new Map<string, ServiceRoute | undefined>();
  for (const service of delta.services) {
    befores.set(service.name, byName.get(service.name));
    drop(service.name);
  }
  for (const service of delta.services) {
    const route = buildRoute(service, befores.get(service.name), deps);
    byName.set(route.name, route);
    byHost.set(route.host, route);
    if (route.model) models.add(route.model.name);
  }
  // Which service owns a model is the first of the document declaring it: one walk per model touched.
  for (const model of models) {
    byModel.delete(model);
    const owner = doc.services.find((s) => s.model?.name === model);
    if (owner) byModel.set(model, byName.get(owner.name)!);
  }
  return assembleTable(doc, byName, byHost, byModel, delta.head ? null : previous);
}
