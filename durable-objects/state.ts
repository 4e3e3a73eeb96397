/**
 * @module
 * The GatewayObject's own SQLite storage: one gateway row, its replica rows, and an outbox of audit
 * events waiting to be written through to D1. Every mutation bumps `version` so the D1 catalog can
 * refuse stale write-throughs. All methods are synchronous (DO SQL is), so a sequence of them
 * without an `await` in between commits atomically.
 */
import type { CertificateState, RouterReport, ServiceRejection } from "../schema/agent-protocol.ts";
import type { Gateway, GatewayReplica, GatewayStatus, ReplicaStatus } from "../schema/api.ts";
import { dnsRecords } from "../schema/dns.ts";
import type { EventType, TypedEvent } from "../schema/events.ts";
import type { GatewayConfiguration } from "../schema/gateway.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gateway (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  project_name TEXT NOT NULL,
  name TEXT NOT NULL,
  configuration TEXT NOT NULL,
  configuration_path TEXT,
  status TEXT NOT NULL,
  status_message TEXT,
  created_at TEXT NOT NULL,
  last_update_at INTEGER NOT NULL,
  to_be_deleted INTEGER NOT NULL DEFAULT 0,
  control_plane_url TEXT NOT NULL,
  hostname TEXT,
  backend_data TEXT,
  scale_attempt INTEGER NOT NULL DEFAULT 0,
  last_scale_attempt_at INTEGER,
  version INTEGER NOT NULL DEFAULT 1,
  synced_version INTEGER NOT NULL DEFAULT 0,
  default_intent TEXT,
  sync_attempt INTEGER NOT NULL DEFAULT 0,
  next_sync_at INTEGER NOT NULL DEFAULT 0,
  config_version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS replicas (
  id TEXT PRIMARY KEY,
  replica_num INTEGER NOT NULL,
  status TEXT NOT NULL,
  status_message TEXT,
  scale_in INTEGER NOT NULL DEFAULT 0,
  terminate_attempt INTEGER NOT NULL DEFAULT 0,
  instance_id TEXT,
  hostname TEXT,
  region TEXT NOT NULL,
  backend_data TEXT,
  attempt INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  bootstrap_secret TEXT,
  agent_registered_at TEXT,
  agent_last_seen_at TEXT,
  agent_version TEXT,
  provisioning_since INTEGER,
  created_at TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  terminated_at TEXT,
  config_applied_version INTEGER,
  config_error TEXT,
  config_error_version INTEGER,
  config_rejected TEXT,
  stats TEXT,
  stats_at INTEGER,
  routers TEXT
);
CREATE TABLE IF NOT EXISTS services (
  name TEXT PRIMARY KEY,
  id TEXT NOT NULL,
  configuration TEXT NOT NULL,
  configuration_path TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  config_version INTEGER NOT NULL
);
-- Members' API tokens were cached here before service tokens; API tokens no longer open services.
DROP TABLE IF EXISTS auth_tokens;
CREATE TABLE IF NOT EXISTS service_tokens (
  id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_replicas (
  service TEXT NOT NULL,
  id TEXT NOT NULL,
  url TEXT NOT NULL,
  registered_at TEXT NOT NULL,
  PRIMARY KEY (service, id)
);
CREATE TABLE IF NOT EXISTS service_scaling (
  service TEXT PRIMARY KEY,
  desired_replicas INTEGER NOT NULL,
  reason TEXT NOT NULL,
  last_change_at INTEGER,
  last_evaluated_at INTEGER NOT NULL,
  next_evaluation_at INTEGER
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message TEXT NOT NULL,
  actor TEXT,
  created_at TEXT NOT NULL,
  type TEXT,
  data TEXT
);
`;

/** Columns added after a table's first release: objects created earlier gain them on wake-up. */
const ADDED_COLUMNS: Array<{ table: string; column: string; definition: string }> = [
  { table: "outbox", column: "type", definition: "TEXT" },
  { table: "outbox", column: "data", definition: "TEXT" },
  /** The agent's last certificate report (JSON `CertificateState[]`). */
  { table: "replicas", column: "certificates", definition: "TEXT" },
  /** The agent's last router report (JSON `RouterReport[]`). */
  { table: "replicas", column: "routers", definition: "TEXT" },
  /** A re-create waiting for the deletion to finish (JSON of the create's input). */
  { table: "gateway", column: "recreate", definition: "TEXT" },
  /** Services the agent did not apply in its applied version (JSON `ServiceRejection[]`), or null. */
  { table: "replicas", column: "config_rejected", definition: "TEXT" },
];

export type DefaultIntent = "set" | "unset" | "if_none";

export interface GatewayRow {
  id: string;
  project_id: string;
  project_name: string;
  name: string;
  configuration: GatewayConfiguration;
  configuration_path: string | null;
  status: GatewayStatus;
  status_message: string | null;
  created_at: string;
  last_update_at: number;
  to_be_deleted: boolean;
  control_plane_url: string;
  hostname: string | null;
  backend_data: string | null;
  scale_attempt: number;
  last_scale_attempt_at: number | null;
  version: number;
  synced_version: number;
  default_intent: DefaultIntent | null;
  sync_attempt: number;
  next_sync_at: number;
  /** Version of the configuration document agents receive; bumped by every change they must see. */
  config_version: number;
  /** The create (JSON) that follows this gateway's deletion when it is being re-created. */
  recreate: string | null;
}

export interface ReplicaRow {
  id: string;
  replica_num: number;
  status: ReplicaStatus;
  status_message: string | null;
  scale_in: boolean;
  terminate_attempt: number;
  instance_id: string | null;
  hostname: string | null;
  region: string;
  backend_data: string | null;
  attempt: number;
  next_attempt_at: number;
  bootstrap_secret: string | null;
  agent_registered_at: string | null;
  agent_last_seen_at: string | null;
  agent_version: string | null;
  provisioning_since: number | null;
  created_at: string;
  created_ms: number;
  terminated_at: string | null;
  config_applied_version: number | null;
  config_error: string | null;
  config_error_version: number | null;
  /** The services the applied version does not serve as configured (JSON `ServiceRejection[]`), or null. */
  config_rejected: string | null;
  stats: string | null;
  stats_at: number | null;
  certificates: string | null;
  /** The agent's last `RouterReport[]` (JSON), or null before one. */
  routers: string | null;
}

export interface OutboxEvent {
  seq: number;
  message: string;
  actor: string | null;
  created_at: string;
  /** Typed events only (see `schema/events.ts`); `data` is its JSON. */
  type: EventType | null;
  data: string | null;
}

type Row = Record<string, SqlStorageValue>;

const iso = (ms = Date.now()) => new Date(ms).toISOString();

function toGateway(r: Row): GatewayRow {
  return {
    ...(r as unknown as GatewayRow),
    configuration: JSON.parse(r.configuration as string) as GatewayConfiguration,
    to_be_deleted: r.to_be_deleted === 1,
  };
}

function toReplica(r: Row): ReplicaRow {
  return { ...(r as unknown as ReplicaRow), scale_in: r.scale_in === 1 };
}

export const upper = (s: string) => s.toUpperCase();

export class GatewayState {
  constructor(private readonly sql: SqlStorage) {}

  migrate(): void {
    this.sql.exec(SCHEMA);
    for (const { table, column, definition } of ADDED_COLUMNS) {
      const columns = this.sql.exec(`PRAGMA table_info(${table})`).toArray();
      if (!columns.some((c) => c.name === column))
        this.sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }

  gateway(): GatewayRow | null {
    const rows = this.sql.exec("SELECT * FROM gateway WHERE singleton = 1").toArray();
    return rows[0] ? toGateway(rows[0]) : null;
  }

  insertGateway(
    g: Omit<GatewayRow, "version" | "synced_version" | "sync_attempt" | "next_sync_at" | "config_version" | "recreate">,
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
    if (!g) return null;
    const newest = new Map<number, ReplicaRow>();
    for (const r of this.replicas()) {
      if (r.status === "terminated" && r.scale_in) continue;
      const seen = newest.get(r.replica_num);
      if (!seen || seen.created_ms <= r.created_ms) newest.set(r.replica_num, r);
    }
    const replicas: GatewayReplica[] = [...newest.values()]
      .sort((a, b) => a.replica_num - b.replica_num)
      .map((r) => ({
        replica_num: r.replica_num,
        hostname: r.hostname,
        backend: g.configuration.backend,
        region: r.region,
        instance_id: r.instance_id,
        created_at: r.created_at,
        status: r.status,
        status_message: r.status_message,
        config: {
          desired_version: g.config_version,
          applied_version: r.config_applied_version,
          error: r.config_error,
          rejected_services: r.config_rejected ? (JSON.parse(r.config_rejected) as ServiceRejection[]) : [],
        },
        certificates: r.certificates ? (JSON.parse(r.certificates) as CertificateState[]) : [],
        agent: r.agent_registered_at
          ? { registered_at: r.agent_registered_at, last_seen_at: r.agent_last_seen_at, version: r.agent_version }
          : null,
        routers: r.routers ? (JSON.parse(r.routers) as RouterReport[]) : [],
      }));
    return {
      id: g.id,
      name: g.name,
      project_name: g.project_name,
      configuration: { ...g.configuration, default: isDefault },
      created_at: g.created_at,
      status: g.status,
      status_message: g.status_message,
      hostname: g.hostname ?? soleAddress(replicas),
      wildcard_domain: g.configuration.domain,
      dns_records: dnsRecords(
        g.configuration.domain,
        g.hostname
          ? [g.hostname]
          : replicas.filter((r) => r.status !== "terminating" && r.status !== "terminated").map((r) => r.hostname),
      ),
      default: isDefault,
      to_be_deleted: g.to_be_deleted,
      backend: g.configuration.backend,
      region: g.configuration.region,
      replicas,
    };
  }
}

/**
 * Without a load balancer, a gateway with one active replica is reached at that replica's address
 * (what its table shows); with several there is no one address, and the replicas carry theirs.
 */
function soleAddress(replicas: GatewayReplica[]): string | null {
  const active = replicas.filter((r) => r.status !== "terminating" && r.status !== "terminated");
  return active.length === 1 ? active[0]!.hostname : null;
}
