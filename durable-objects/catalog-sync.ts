/**
 * @module
 * Write-through of a gateway's summary, its pending default-gateway change, its audit events and
 * the catalog rows of the services that changed (created or removed since the last write: marked
 * in `change-log.ts`, so a write is proportional to the change, not to the gateway) from the
 * GatewayObject to D1, as one D1 batch (one implicit transaction). The upsert only wins over an
 * older version, service rows are upserted or deleted as the object has them now, and events carry
 * a source key, so repeating a sync is harmless. Webhook
 * deliveries of the typed events are created by the same batch; both functions return the webhook
 * endpoints they fed, whose dispatchers the caller pokes once the batch has committed.
 */
import { and, eq, sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import { events, gateways, projects, services } from "../core/db/schema.ts";
import { batch, type Statement } from "../core/db/statements.ts";
import { deliveryInserts, fedWebhooks } from "../core/webhook-deliveries.ts";
import type { ChangeLog, DirtyService } from "./change-log.ts";
import type { ServiceStore } from "./service-store.ts";
import type { GatewayRow, GatewayState, OutboxEvent } from "./state.ts";

/** Outbox events as idempotent inserts: the source key makes a repeated write-through a no-op. */
function eventInserts(d: DrizzleD1Database, g: GatewayRow, outbox: OutboxEvent[]) {
  return outbox.map((e) =>
    d
      .insert(events)
      .values({
        projectId: g.project_id,
        gatewayId: g.id,
        gatewayName: g.name,
        actor: e.actor,
        message: e.message,
        type: e.type,
        data: e.data,
        sequence: e.seq,
        sourceKey: `${g.id}:${e.seq}`,
        createdAt: e.created_at,
      })
      .onConflictDoNothing(),
  );
}

/** The outbox's deliveries, last in the batch: they select the events inserted just before. */
function outboxDeliveries(g: GatewayRow, outbox: OutboxEvent[]): Statement[] {
  const typed = outbox.filter((e) => e.type !== null);
  return typed.length > 0 ? [deliveryInserts(typed.map((e) => `${g.id}:${e.seq}`))] : [];
}

/** Service rows per batch: the rest follow in the next write (a migrated gateway marks all of them once). */
const MAX_SERVICE_ROWS_PER_SYNC = 500;

/**
 * The catalog rows of the services marked dirty, as the object has them now: an upsert for a
 * service that exists, a delete (of this gateway's row only) for one that is gone.
 */
function serviceWrites(d: DrizzleD1Database, g: GatewayRow, store: ServiceStore, dirty: DirtyService[]) {
  return dirty.map(({ name }) => {
    const svc = store.get(name);
    if (!svc) {
      return d
        .delete(services)
        .where(and(eq(services.gatewayId, g.id), eq(services.projectId, g.project_id), eq(services.name, name)));
    }
    return d
      .insert(services)
      .values({
        id: svc.id,
        projectId: g.project_id,
        name: svc.name,
        gatewayId: g.id,
        gatewayName: g.name,
        createdAt: svc.created_at,
      })
      .onConflictDoUpdate({
        target: [services.projectId, services.name],
        set: { id: svc.id, gatewayId: g.id, gatewayName: g.name, createdAt: svc.created_at },
      });
  });
}

export async function syncCatalog(
  db: D1Database,
  state: GatewayState,
  store: ServiceStore,
  changes: ChangeLog,
  objectId: string,
): Promise<string[]> {
  const g = state.gateway();
  if (!g) return [];
  const outbox = state.outbox();
  const dirty = changes.dirty(MAX_SERVICE_ROWS_PER_SYNC);
  if (g.version <= g.synced_version && outbox.length === 0 && !g.default_intent && dirty.length === 0) return [];
  const snapshot = state.snapshot();
  if (!snapshot) return [];
  const d = drizzle(db);
  const now = new Date().toISOString();
  const defaultEvent = (message: string, key: string) =>
    sql`INSERT OR IGNORE INTO ${events} (project_id, gateway_id, gateway_name, actor, message, source_key)
      SELECT ${g.project_id}, ${g.id}, ${g.name}, NULL, ${message}, ${key}
      WHERE EXISTS (SELECT 1 FROM ${projects} WHERE ${projects.id} = ${g.project_id}
        AND ${projects.defaultGatewayId} IS ${g.id})`;

  const statements: Statement[] = [
    d
      .insert(gateways)
      .values({
        id: g.id,
        projectId: g.project_id,
        name: g.name,
        objectId,
        backend: g.configuration.backend,
        region: g.configuration.region,
        status: g.status,
        statusMessage: g.status_message,
        hostname: g.hostname,
        wildcardDomain: g.configuration.domain,
        toBeDeleted: g.to_be_deleted,
        version: g.version,
        snapshot,
        createdAt: g.created_at,
        updatedAt: now,
      })
      .onConflictDoUpdate({
        target: gateways.id,
        set: {
          status: sql`excluded.status`,
          statusMessage: sql`excluded.status_message`,
          hostname: sql`excluded.hostname`,
          wildcardDomain: sql`excluded.wildcard_domain`,
          toBeDeleted: sql`excluded.to_be_deleted`,
          version: sql`excluded.version`,
          snapshot: sql`excluded.snapshot`,
          updatedAt: sql`excluded.updated_at`,
        },
        setWhere: sql`excluded.version > ${gateways.version}`,
      }),
    ...eventInserts(d, g, outbox),
    ...serviceWrites(d, g, store, dirty),
  ];
  const key = `${g.id}:default:${g.version}`;
  if (g.default_intent === "set" && !g.to_be_deleted) {
    statements.push(
      sql`INSERT OR IGNORE INTO ${events} (project_id, gateway_id, gateway_name, actor, message, source_key)
        SELECT ${g.project_id}, ${g.id}, ${g.name}, NULL, 'Gateway set as project default', ${key}
        WHERE NOT EXISTS (SELECT 1 FROM ${projects} WHERE ${projects.id} = ${g.project_id}
          AND ${projects.defaultGatewayId} IS ${g.id})`,
      d.update(projects).set({ defaultGatewayId: g.id }).where(eq(projects.id, g.project_id)),
    );
  } else if (g.default_intent === "unset") {
    statements.push(
      defaultEvent("Gateway unset as project default", key),
      d
        .update(projects)
        .set({ defaultGatewayId: null })
        .where(and(eq(projects.id, g.project_id), eq(projects.defaultGatewayId, g.id))),
    );
  } else if (g.default_intent === "if_none" && !g.to_be_deleted) {
    // Default only when the project has none that is alive (a stale id of a deleted gateway counts as none).
    statements.push(
      sql`UPDATE ${projects} SET default_gateway_id = ${g.id} WHERE ${projects.id} = ${g.project_id}
        AND (default_gateway_id IS NULL OR default_gateway_id NOT IN
          (SELECT ${gateways.id} FROM ${gateways} WHERE ${gateways.toBeDeleted} = 0))`,
      defaultEvent("Gateway set as project default", key),
    );
  }
  const deliveries = outboxDeliveries(g, outbox);
  statements.push(...deliveries);
  const results = await batch(db, statements);
  // Only what was read before the await is acknowledged: changes made meanwhile stay pending.
  state.setSyncState({ synced_version: g.version, sync_attempt: 0, next_sync_at: 0 });
  const current = state.gateway();
  if (current?.default_intent === g.default_intent) state.setSyncState({ default_intent: null });
  const last = outbox.at(-1);
  if (last) state.ackOutbox(last.seq);
  changes.ackDirty(dirty);
  return deliveries.length > 0 ? fedWebhooks(results.at(-1)) : [];
}

/** Final write-through of a deleted gateway: its row goes, and so does its place as project default. */
export async function removeFromCatalog(db: D1Database, state: GatewayState): Promise<string[]> {
  const g = state.gateway();
  if (!g) return [];
  const d = drizzle(db);
  const outbox = state.outbox();
  const deliveries = outboxDeliveries(g, outbox);
  const results = await batch(db, [
    d.delete(services).where(eq(services.gatewayId, g.id)),
    d.delete(gateways).where(eq(gateways.id, g.id)),
    d
      .update(projects)
      .set({ defaultGatewayId: null })
      .where(and(eq(projects.id, g.project_id), eq(projects.defaultGatewayId, g.id))),
    ...eventInserts(d, g, outbox),
    d
      .insert(events)
      .values({
        projectId: g.project_id,
        gatewayId: g.id,
        gatewayName: g.name,
        message: "Gateway deleted",
        sourceKey: `${g.id}:deleted`,
      })
      .onConflictDoNothing(),
    ...deliveries,
  ]);
  return deliveries.length > 0 ? fedWebhooks(results.at(-1)) : [];
}
