/**
 * @module
 * The tables of a GatewayObject's SQLite storage, in one place: created when the object wakes and
 * after a deletion wiped its storage. Columns added after a table's first release are added to
 * objects created earlier (`ADDED_COLUMNS`). The DNS automation and the project's ACME copy keep
 * their own tables beside their code. The row types say what `state.ts` reads back.
 */
import type { GatewayStatus, ReplicaStatus } from "../schema/api.ts";
import type { EventType } from "../schema/events.ts";
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
-- A removed service, remembered so a delta can say so (config-changes.ts prunes them).
CREATE TABLE IF NOT EXISTS service_tombstones (
  name TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS service_tombstones_version ON service_tombstones (version);
-- Services whose D1 catalog row is behind (upsert or delete), at the configuration version that
-- made them so: the write-through writes only these (catalog-sync.ts).
CREATE TABLE IF NOT EXISTS catalog_dirty (
  name TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
-- Running totals of the services and their document entries, for O(1) limit checks (service-store.ts).
CREATE TABLE IF NOT EXISTS service_totals (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  count INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
-- A PD service scaled per role (replica groups): one standing decision per (service, role), as
-- service_scaling's row for a co-located service. Objects from before it gain it on wake-up.
CREATE TABLE IF NOT EXISTS service_role_scaling (
  service TEXT NOT NULL,
  role TEXT NOT NULL,
  desired_replicas INTEGER NOT NULL,
  reason TEXT NOT NULL,
  last_change_at INTEGER,
  last_evaluated_at INTEGER NOT NULL,
  next_evaluation_at INTEGER,
  capacity TEXT,
  PRIMARY KEY (service, role)
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
  /**
   * Latency autoscaling's remembered capacity (JSON `{for: "<metric> <target>", rps}`): requests per
   * second per replica at which the metric last passed its target; null when unknown.
   */
  { table: "service_scaling", column: "capacity", definition: "TEXT" },
  // Prefill/decode disaggregation (docs/pd.md): a replica's role and a prefill replica's bootstrap port.
  { table: "service_replicas", column: "role", definition: "TEXT" },
  { table: "service_replicas", column: "bootstrap_port", definition: "INTEGER" },
  // Incremental configuration (docs/configuration-delivery.md). Agents below `full_version` get a
  // whole document (a change that touched every service, or a pruned tombstone); `head_version`
  // is the last version that changed the document's envelope.
  { table: "gateway", column: "full_version", definition: "INTEGER NOT NULL DEFAULT 0" },
  { table: "gateway", column: "head_version", definition: "INTEGER NOT NULL DEFAULT 0" },
  /** Bytes of the service's entry in the document when it last changed; null: not measured yet. */
  { table: "services", column: "doc_bytes", definition: "INTEGER" },
];

/** Indexes on columns added above (created after them). */
const ADDED_INDEXES = [
  "CREATE INDEX IF NOT EXISTS services_config_version ON services (config_version)",
  // The earliest held scaling decision, read after every apply (`nextScalingEvaluation`).
  "CREATE INDEX IF NOT EXISTS service_scaling_next ON service_scaling (next_evaluation_at)",
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
  /** Agents whose version is below this one get a whole document, not a delta. */
  full_version: number;
  /** The last version that changed the document's envelope (`ConfigHead`). */
  head_version: number;
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

/**
 * Creates what is missing. Objects from before incremental configuration: every service is marked
 * for the catalog once (a write-through may have been pending), and the running totals are counted
 * (entry sizes are measured by the object when it wakes: `measureServices` in config-changes.ts).
 */
export function migrateObjectStorage(sql: SqlStorage): void {
  const hadDirty = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalog_dirty'").toArray();
  sql.exec(SCHEMA);
  for (const { table, column, definition } of ADDED_COLUMNS) {
    const columns = sql.exec(`PRAGMA table_info(${table})`).toArray();
    if (!columns.some((c) => c.name === column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
  }
  for (const index of ADDED_INDEXES) sql.exec(index);
  if (hadDirty.length === 0)
    sql.exec("INSERT OR IGNORE INTO catalog_dirty (name, version) SELECT name, 0 FROM services");
  sql.exec(
    `INSERT OR IGNORE INTO service_totals (singleton, count, bytes)
     SELECT 1, COUNT(*), COALESCE(SUM(doc_bytes), 0) FROM services`,
  );
}
