/**
 * @module
 * The steps every change of a service ends with, in the same synchronous step as the change: a new
 * configuration version stamped on the service's row (with its entry's size, for the document size
 * limit), a tombstone when it is removed, and a mark for the D1 catalog when its catalog row
 * changes (created or removed). Deltas (`config-delta.ts`) and the write-through (`catalog-sync.ts`)
 * read only what these record.
 */

import { entryBytes, serviceEntry } from "./config-document.ts";
import { bumpConfig, type GatewayContext } from "./gateway-context.ts";
import type { ServiceRow } from "./service-store.ts";
import type { GatewayRow } from "./state.ts";

/** Tombstones kept: an agent that missed more removals than this gets a whole document. */
export const KEPT_TOMBSTONES = 1000;

/** A service created or its configuration changed: the row is stored at a new version. */
export function storeService(gw: GatewayContext, g: GatewayRow, row: Omit<ServiceRow, "config_version">): ServiceRow {
  const version = bumpConfig(gw, g);
  const stored: ServiceRow = { ...row, config_version: version };
  const created = gw.services.get(row.name) === null;
  gw.services.upsert(stored, entryBytes(serviceEntry(g, gw.services, stored)));
  gw.changes.forgetTombstone(row.name);
  if (created) gw.changes.markDirty(row.name, version);
  return stored;
}

/** A service's replicas changed: the service is at a new version (its catalog row is unchanged). */
export function touchService(gw: GatewayContext, g: GatewayRow, name: string): void {
  const version = bumpConfig(gw, g);
  const s = gw.services.get(name);
  if (!s) return;
  gw.services.touch(name, version, entryBytes(serviceEntry(g, gw.services, { ...s, config_version: version })));
}

/** A service removed: a tombstone at the new version, and its catalog row to delete. */
export function dropService(gw: GatewayContext, g: GatewayRow, name: string): void {
  const version = bumpConfig(gw, g);
  gw.services.remove(name);
  gw.changes.tombstone(name, version);
  gw.changes.markDirty(name, version);
  const pruned = gw.changes.pruneTombstones(KEPT_TOMBSTONES);
  // Agents below the newest pruned tombstone can no longer be told of it: whole documents for them.
  if (pruned !== null && pruned > g.full_version) {
    gw.state.setFullVersion(pruned);
    g.full_version = pruned;
  }
}

/** Rows stored before entry sizes were kept get theirs (once, when the object wakes). */
export function measureServices(gw: GatewayContext): void {
  const names = gw.services.unmeasured();
  if (names.length === 0) return;
  const g = gw.state.gateway();
  if (!g) return;
  for (const name of names) {
    const s = gw.services.get(name);
    if (s) gw.services.measure(name, entryBytes(serviceEntry(g, gw.services, s)));
  }
  gw.services.recountTotals();
}
