/**
 * @module
 * A delta applied to a routing table in O(changed): only the changed and removed services' routes
 * are rebuilt, so every other service keeps its route object, and with it its balancer, policy (a
 * cache_aware tree), replica state and admission queues; building a route (policy, rate-limit rules,
 * resilience) is what a delta must not repeat for the 9,999 services it does not touch. The maps and
 * what the table derives from its routes (`table-index.ts`: origins, each model's services) are
 * changed in place, once every new route is built (building is what can throw: a refused delta
 * changes nothing), and the new table shares them with the previous one, which is no longer in force:
 * a request already running holds its route, not the table. A whole document (and a rollback, which
 * is one) builds new maps (`routes.ts`).
 *
 * The result equals `buildRoutingTable(merged, previous)` (`routes-delta.test.ts`'s property test):
 * a model's owner is the first service declaring it in the document's order, by name.
 */
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ZoneSpec } from "./rate-limit-store.ts";
import {
  buildRoute,
  EMPTY_TABLE,
  type RoutingTable,
  routeZones,
  type ServiceRoute,
  type TableDeps,
  tableEnvelope,
} from "./routes.ts";
import { TableIndex } from "./table-index.ts";

/** The table after a delta, and what its change means for the process's host-wide parts. */
export interface TableChange {
  table: RoutingTable;
  /** Origins no replica has any more (their connection pools can close). */
  goneOrigins: string[];
  /** The rate-limit zones of the changed services, and the ids of those they and the removed ones had. */
  zones: ZoneSpec[];
  droppedZones: string[];
}

/** `previous` with `delta` applied (its maps changed in place: `previous` is no longer to be read). */
export function updateRoutingTable(previous: RoutingTable, delta: ConfigDelta, deps: TableDeps): TableChange {
  const built = delta.services.map((service) => buildRoute(service, previous.byName.get(service.name), deps));
  // Nothing above changed the table; from here on nothing throws.
  // The empty table is shared (every process starts on it): its maps are never changed.
  const fresh = previous === EMPTY_TABLE;
  const byName = fresh ? new Map<string, ServiceRoute>() : (previous.byName as Map<string, ServiceRoute>);
  const byHost = fresh ? new Map<string, ServiceRoute>() : (previous.byHost as Map<string, ServiceRoute>);
  const byModel = fresh ? new Map<string, ServiceRoute>() : (previous.byModel as Map<string, ServiceRoute>);
  const index = fresh ? new TableIndex() : previous.index;
  const goneOrigins: string[] = [];
  const droppedZones: string[] = [];
  const models = new Set<string>();
  const drop = (name: string) => {
    const old = byName.get(name);
    if (!old) return;
    byName.delete(name);
    if (byHost.get(old.host) === old) byHost.delete(old.host);
    if (old.model) models.add(old.model.name);
    index.remove(old, goneOrigins);
    for (const rule of old.rateLimits) droppedZones.push(rule.zone.id);
  };
  for (const name of delta.removed) drop(name);
  for (const service of delta.services) drop(service.name);
  for (const route of built) {
    byName.set(route.name, route);
    byHost.set(route.host, route);
    index.add(route);
    if (route.model) models.add(route.model.name);
  }
  for (const model of models) {
    const owner = index.modelOwner(model);
    if (owner === undefined) byModel.delete(model);
    else byModel.set(model, byName.get(owner)!);
  }
  // An origin a new route brought back is not gone.
  const gone = goneOrigins.filter((origin) => !index.origins.has(origin));
  const envelope = delta.head ? tableEnvelope(delta.head) : previous;
  let services: readonly string[] | null = null;
  let zones: readonly ZoneSpec[] | null = null;
  const table: RoutingTable = {
    version: delta.version,
    byName,
    byHost,
    byModel,
    entrypointHost: envelope.entrypointHost,
    createdAt: envelope.createdAt,
    tokens: envelope.tokens,
    metricsPublic: envelope.metricsPublic,
    origins: index.origins,
    // Made only when read (a whole document's stats retain them): the document's order is by name.
    get services() {
      services ??= [...byName.keys()].sort();
      return services;
    },
    get zones() {
      zones ??= routeZones(byHost.values());
      return zones;
    },
    index,
  };
  return { table, goneOrigins: gone, zones: built.flatMap((r) => r.rateLimits.map((rule) => rule.zone)), droppedZones };
}
