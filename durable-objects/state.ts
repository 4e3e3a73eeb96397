/**
 * @module
 * The GatewayObject's own SQLite storage: one gateway row, its replica rows, and an outbox of audit
 * events waiting to be written through to D1 (the tables: `storage-schema.ts`; the API view of the
 * rows: `gateway-view.ts`). Every mutation bumps `version` so the D1 catalog can
 * refuse stale write-throughs. All methods are synchronous (DO SQL is), so a sequence of them
 * without an `await` in between commits atomically.
 */
import type { Gateway } from "../schema/api.ts";
import type { TypedEvent } from "../schema/events.ts";
import { type GatewayConfiguration, storedGatewayConfiguration } from "../schema/gateway.ts";
import { gatewayView } from "./gateway-view.ts";
import {
  type DefaultIntent,
  type GatewayRow,
  migrateObjectStorage,
  type OutboxEvent,
  type ReplicaRow,
} from "./storage-schema.ts";

export type { DefaultIntent, GatewayRow, OutboxEvent, ReplicaRow };

type Row = Record<string, SqlStorageValue>;

const iso = (ms = Date.now()) => new Date(ms).toISOString();

function toGateway(r: Row): GatewayRow {
  return {
    ...(r as unknown as GatewayRow),
    // Stored by this or an older version: fields added since get their defaults.
    configuration: storedGatewayConfiguration(JSON.parse(r.configuration as string) as GatewayConfiguration),
    to_be_deleted: r.to_be_deleted === 1,
  };
}

function toReplica(r: Row): ReplicaRow {
  return { ...(r as unknown as ReplicaRow), scale_in: r.scale_in === 1 };
}

export const upper = (s: string) => s.toUpperCase();

export class GatewayState {
  constructor(private readonly sql: SqlStorage) {}

  /** Creates the object's tables (gateway, replicas, services and the outbox). */
  migrate(): void {
    migrateObjectStorage(this.sql);
  }

  gateway(): GatewayRow | null {
    const rows = this.sql.exec("SELECT * FROM gateway WHERE singleton = 1").toArray();
    return rows[0] ? toGateway(rows[0]) : null;
  }

  insertGateway(
    g: Omit<
      GatewayRow,
      | "version"
      | "synced_version"
      | "sync_attempt"
      | "next_sync_at"
      | "config_version"
      | "recreate"
      | "full_version"
      | "head_version"
    >,
  ): void {
    this.sql.exec(
      `INSERT INTO gateway (singleton, id, project_id, project_name, name, configuration, configuration_path, status,
        status_message, created_at, last_update_at, to_be_deleted, control_plane_url, hostname, backend_data,
        scale_attempt, last_scale_attempt_at, default_intent)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      g.id,
      g.project_id,
      g.project_name,
      g.name,
      JSON.stringify(g.configuration),
      g.configuration_path,
      g.status,
      g.status_message,
      g.created_at,
      g.last_update_at,
      g.to_be_deleted ? 1 : 0,
      g.control_plane_url,
      g.hostname,
      g.backend_data,
      g.scale_attempt,
      g.last_scale_attempt_at,
      g.default_intent,
    );
  }

  /** Updates gateway columns and bumps the version (one statement, so it is atomic). */
  updateGateway(changes: Partial<Omit<GatewayRow, "version" | "synced_version">>): void {
    const entries = Object.entries(changes).map(([k, v]) => {
      if (k === "configuration") return [k, JSON.stringify(v)] as const;
      if (typeof v === "boolean") return [k, v ? 1 : 0] as const;
      return [k, v as SqlStorageValue] as const;
    });
    const sets = entries.map(([k]) => `${k} = ?`);
    this.sql.exec(
      `UPDATE gateway SET ${[...sets, "version = version + 1"].join(", ")} WHERE singleton = 1`,
      ...entries.map(([, v]) => v),
    );
  }

  /** Sync bookkeeping: does not bump the version (it is not a change of the gateway). */
  setSyncState(changes: {
    synced_version?: number;
    sync_attempt?: number;
    next_sync_at?: number;
    default_intent?: null;
  }) {
    const entries = Object.entries(changes);
    if (entries.length === 0) return;
    this.sql.exec(
      `UPDATE gateway SET ${entries.map(([k]) => `${k} = ?`).join(", ")} WHERE singleton = 1`,
      ...entries.map(([, v]) => v as SqlStorageValue),
    );
  }

  /** Agents below `version` get a whole document (not a change of the gateway: no version bump). */
  setFullVersion(version: number): void {
    this.sql.exec("UPDATE gateway SET full_version = MAX(full_version, ?) WHERE singleton = 1", version);
  }

  bump(): void {
    this.sql.exec("UPDATE gateway SET version = version + 1 WHERE singleton = 1");
  }

  replicas(): ReplicaRow[] {
    return this.sql.exec("SELECT * FROM replicas ORDER BY replica_num, created_ms").toArray().map(toReplica);
  }

  replica(id: string): ReplicaRow | null {
    const rows = this.sql.exec("SELECT * FROM replicas WHERE id = ?", id).toArray();
    return rows[0] ? toReplica(rows[0]) : null;
  }

  insertReplica(r: Pick<ReplicaRow, "id" | "replica_num" | "region" | "bootstrap_secret">): void {
    const now = Date.now();
    this.sql.exec(
      `INSERT INTO replicas (id, replica_num, status, region, bootstrap_secret, created_at, created_ms)
       VALUES (?, ?, 'submitted', ?, ?, ?, ?)`,
      r.id,
      r.replica_num,
      r.region,
      r.bootstrap_secret,
      iso(now),
      now,
    );
    this.bump();
  }

  /**
   * Updates replica columns. `bump: false` is for telemetry (last seen, stats): it is read from
   * the object itself and must not make the catalog write through every few seconds.
   */
  updateReplica(id: string, changes: Partial<Omit<ReplicaRow, "id">>, options: { bump?: boolean } = {}): void {
    const entries = Object.entries(changes).map(([k, v]) => [k, typeof v === "boolean" ? (v ? 1 : 0) : v] as const);
    if (entries.length === 0) return;
    this.sql.exec(
      `UPDATE replicas SET ${entries.map(([k]) => `${k} = ?`).join(", ")} WHERE id = ?`,
      ...entries.map(([, v]) => v as SqlStorageValue),
      id,
    );
    if (options.bump !== false) this.bump();
  }

  /**
   * Records an audit event, and with `typed` the event webhooks deliver; it reaches D1 with the
   * next catalog sync, in the order recorded.
   */
  event(message: string, actor: string | null = null, typed?: TypedEvent): void {
    this.sql.exec(
      "INSERT INTO outbox (message, actor, created_at, type, data) VALUES (?, ?, ?, ?, ?)",
      message,
      actor,
      iso(),
      typed?.type ?? null,
      typed ? JSON.stringify(typed.data) : null,
    );
  }

  outbox(): OutboxEvent[] {
    return this.sql.exec("SELECT * FROM outbox ORDER BY seq LIMIT 50").toArray() as unknown as OutboxEvent[];
  }

  ackOutbox(upToSeq: number): void {
    this.sql.exec("DELETE FROM outbox WHERE seq <= ?", upToSeq);
  }

  /** The API view of this gateway (`default` is filled in by the caller from D1). */
  snapshot(isDefault = false): Gateway | null {
    const g = this.gateway();
    return g ? gatewayView(g, this.replicas(), isDefault) : null;
  }
}
