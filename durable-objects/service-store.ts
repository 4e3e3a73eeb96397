/**
 * @module
 * A gateway's services in its object's storage: their configurations, registered replicas, the
 * autoscaler's standing decisions and the project's service tokens (the tables are created with the
 * rest of the object's storage, `storage-schema.ts`). Storage only: the configuration document is
 * built in `config-document.ts`, the API view in `service-view.ts`.
 */
import { type ReplicaRole, type ServiceConfiguration, storedServiceConfiguration } from "../schema/service.ts";

export interface ServiceRow {
  name: string;
  id: string;
  configuration: ServiceConfiguration;
  configuration_path: string | null;
  created_at: string;
  updated_at: string;
  config_version: number;
  /** Bytes of its entry in the configuration document when it last changed (null: not measured yet). */
  doc_bytes?: number | null;
}

export interface ServiceReplicaRow {
  service: string;
  id: string;
  url: string;
  registered_at: string;
  /** Prefill/decode role; null (also for rows from before roles): co-located. */
  role?: ReplicaRole | null;
  bootstrap_port?: number | null;
}

/** What registers a replica (`schema/service.ts`'s `ReplicaEndpoint`). */
export interface ReplicaRegistration {
  id: string;
  url: string;
  /** Absent or null: co-located (callers from before roles). */
  role?: ReplicaRole | null;
  bootstrap_port?: number | null;
}

/** The autoscaler's standing decision for a service with `scaling` (times in ms since the epoch). */
export interface ScalingRow {
  service: string;
  desired_replicas: number;
  reason: string;
  /** When the autoscaler last moved `desired_replicas`; null before its first move (no delay applies then). */
  last_change_at: number | null;
  last_evaluated_at: number;
  /** When a change held back by a delay may go through (the alarm re-evaluates then). */
  next_evaluation_at: number | null;
  /** Latency metrics' remembered capacity (`scaling.ts`'s JSON); null or absent when none. */
  capacity?: string | null;
}

/** A PD service's standing decision for one role (replica groups: `service_role_scaling`). */
export interface RoleScalingRow extends ScalingRow {
  role: ReplicaRole;
}

type Row = Record<string, SqlStorageValue>;

const toServiceRow = (r: Row): ServiceRow => ({
  ...(r as unknown as ServiceRow),
  // Stored by this or an older version: fields added since get their defaults.
  configuration: storedServiceConfiguration(JSON.parse(r.configuration as string)),
});

export class ServiceStore {
  constructor(private readonly sql: SqlStorage) {}

  list(): ServiceRow[] {
    return this.sql.exec("SELECT * FROM services ORDER BY name").toArray().map(toServiceRow);
  }

  /** One service, by its primary key (never a scan: this runs on every apply and registration). */
  get(name: string): ServiceRow | null {
    const row = this.sql.exec("SELECT * FROM services WHERE name = ?", name).toArray()[0];
    return row ? toServiceRow(row) : null;
  }

  /** Services changed after `version`, in name order (indexed on `config_version`). */
  changedSince(version: number): ServiceRow[] {
    return this.sql
      .exec("SELECT * FROM services WHERE config_version > ? ORDER BY name", version)
      .toArray()
      .map(toServiceRow);
  }

  /** The replicas of the services changed after `version` only. */
  replicasChangedSince(version: number): ServiceReplicaRow[] {
    return this.sql
      .exec(
        `SELECT * FROM service_replicas WHERE service IN (SELECT name FROM services WHERE config_version > ?)
         ORDER BY registered_at, id`,
        version,
      )
      .toArray() as unknown as ServiceReplicaRow[];
  }

  /** How many services, and the bytes of their document entries (running totals: O(1)). */
  totals(): { count: number; bytes: number } {
    const row = this.sql.exec("SELECT count, bytes FROM service_totals WHERE singleton = 1").toArray()[0];
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /** Recounts the totals (after entry sizes were measured for rows from before they were). */
  recountTotals(): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO service_totals (singleton, count, bytes)
       SELECT 1, COUNT(*), COALESCE(SUM(doc_bytes), 0) FROM services`,
    );
  }

  /** Moves the totals by a service's entry going from `before` bytes (null: no service) to `after` (null: gone). */
  private adjustTotals(before: number | null, after: number | null): void {
    const count = (after === null ? 0 : 1) - (before === null ? 0 : 1);
    this.sql.exec(
      "UPDATE service_totals SET count = count + ?, bytes = bytes + ? WHERE singleton = 1",
      count,
      (after ?? 0) - (before ?? 0),
    );
  }

  private entryBytes(name: string): number | null {
    const row = this.sql.exec("SELECT doc_bytes FROM services WHERE name = ?", name).toArray()[0];
    return row ? Number(row.doc_bytes ?? 0) : null;
  }

  /** Creates or replaces a service; `docBytes` is the size of its document entry. */
  upsert(row: ServiceRow, docBytes = 0): void {
    this.adjustTotals(this.entryBytes(row.name), docBytes);
    this.sql.exec(
      `INSERT INTO services (name, id, configuration, configuration_path, created_at, updated_at, config_version, doc_bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET configuration = excluded.configuration,
         configuration_path = excluded.configuration_path, updated_at = excluded.updated_at,
         config_version = excluded.config_version, doc_bytes = excluded.doc_bytes`,
      row.name,
      row.id,
      JSON.stringify(row.configuration),
      row.configuration_path,
      row.created_at,
      row.updated_at,
      row.config_version,
      docBytes,
    );
  }

  /** A change of the service's replicas: its new version and entry size. */
  touch(name: string, configVersion: number, docBytes: number): void {
    this.adjustTotals(this.entryBytes(name), docBytes);
    this.sql.exec(
      "UPDATE services SET config_version = ?, updated_at = ?, doc_bytes = ? WHERE name = ?",
      configVersion,
      new Date().toISOString(),
      docBytes,
      name,
    );
  }

  /** Records an entry's size without a change (rows from before sizes were kept). */
  measure(name: string, docBytes: number): void {
    this.sql.exec("UPDATE services SET doc_bytes = ? WHERE name = ?", docBytes, name);
  }

  /** Names of services whose entry size was never measured. */
  unmeasured(): string[] {
    return this.sql
      .exec("SELECT name FROM services WHERE doc_bytes IS NULL")
      .toArray()
      .map((r) => r.name as string);
  }

  remove(name: string): void {
    const before = this.entryBytes(name);
    if (before !== null) this.adjustTotals(before, null);
    this.sql.exec("DELETE FROM service_scaling WHERE service = ?", name);
    this.removeRoleScaling(name);
    this.sql.exec("DELETE FROM service_replicas WHERE service = ?", name);
    this.sql.exec("DELETE FROM services WHERE name = ?", name);
  }

  replicas(service?: string): ServiceReplicaRow[] {
    const rows = service
      ? this.sql.exec("SELECT * FROM service_replicas WHERE service = ? ORDER BY registered_at, id", service)
      : this.sql.exec("SELECT * FROM service_replicas ORDER BY registered_at, id");
    return rows.toArray() as unknown as ServiceReplicaRow[];
  }

  putReplica(service: string, replica: ReplicaRegistration): "created" | "updated" | "unchanged" {
    const { id, url } = replica;
    const role = replica.role ?? null;
    const bootstrap_port = replica.bootstrap_port ?? null;
    const existing = this.sql
      .exec("SELECT * FROM service_replicas WHERE service = ? AND id = ?", service, id)
      .toArray()[0] as unknown as ServiceReplicaRow | undefined;
    if (
      existing?.url === url &&
      (existing.role ?? null) === role &&
      (existing.bootstrap_port ?? null) === bootstrap_port
    ) {
      return "unchanged";
    }
    this.sql.exec(
      `INSERT INTO service_replicas (service, id, url, registered_at, role, bootstrap_port) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, id) DO UPDATE SET url = excluded.url, role = excluded.role,
         bootstrap_port = excluded.bootstrap_port`,
      service,
      id,
      url,
      new Date().toISOString(),
      role,
      bootstrap_port,
    );
    return existing ? "updated" : "created";
  }

  scaling(service: string): ScalingRow | null {
    const rows = this.sql.exec("SELECT * FROM service_scaling WHERE service = ?", service).toArray();
    return (rows[0] as unknown as ScalingRow | undefined) ?? null;
  }

  /** The earliest time a held scaling decision may go through, or null. */
  nextScalingEvaluation(): number | null {
    const row = this.sql
      .exec(
        `SELECT MIN(at) AS at FROM (SELECT MIN(next_evaluation_at) AS at FROM service_scaling
         UNION ALL SELECT MIN(next_evaluation_at) AS at FROM service_role_scaling)`,
      )
      .toArray()[0];
    return typeof row?.at === "number" ? row.at : null;
  }

  putScaling(row: ScalingRow): void {
    this.sql.exec(
      `INSERT INTO service_scaling (service, desired_replicas, reason, last_change_at, last_evaluated_at, next_evaluation_at, capacity)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service) DO UPDATE SET desired_replicas = excluded.desired_replicas, reason = excluded.reason,
         last_change_at = excluded.last_change_at, last_evaluated_at = excluded.last_evaluated_at,
         next_evaluation_at = excluded.next_evaluation_at, capacity = excluded.capacity`,
      row.service,
      row.desired_replicas,
      row.reason,
      row.last_change_at,
      row.last_evaluated_at,
      row.next_evaluation_at,
      row.capacity ?? null,
    );
  }

  removeScaling(service: string): void {
    this.sql.exec("DELETE FROM service_scaling WHERE service = ?", service);
  }

  /** A PD service's standing decisions per role (none before its first evaluation). */
  roleScaling(service: string): RoleScalingRow[] {
    return this.sql
      .exec("SELECT * FROM service_role_scaling WHERE service = ? ORDER BY role DESC", service)
      .toArray() as unknown as RoleScalingRow[];
  }

  putRoleScaling(row: RoleScalingRow): void {
    this.sql.exec(
      `INSERT INTO service_role_scaling (service, role, desired_replicas, reason, last_change_at, last_evaluated_at, next_evaluation_at, capacity)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(service, role) DO UPDATE SET desired_replicas = excluded.desired_replicas, reason = excluded.reason,
         last_change_at = excluded.last_change_at, last_evaluated_at = excluded.last_evaluated_at,
         next_evaluation_at = excluded.next_evaluation_at, capacity = excluded.capacity`,
      row.service,
      row.role,
      row.desired_replicas,
      row.reason,
      row.last_change_at,
      row.last_evaluated_at,
      row.next_evaluation_at,
      row.capacity ?? null,
    );
  }

  removeRoleScaling(service: string): void {
    this.sql.exec("DELETE FROM service_role_scaling WHERE service = ?", service);
  }

  serviceTokens(): { id: string; secret_sha256: string }[] {
    return this.sql.exec("SELECT id, secret_sha256 FROM service_tokens ORDER BY id").toArray() as unknown as {
      id: string;
      secret_sha256: string;
    }[];
  }

  /** Replaces the project's service tokens; true when they changed. */
  replaceServiceTokens(tokens: { id: string; secret_sha256: string }[]): boolean {
    const before = JSON.stringify(this.serviceTokens());
    const sorted = [...tokens].sort((a, b) => (a.id < b.id ? -1 : 1));
    if (before === JSON.stringify(sorted)) return false;
    this.sql.exec("DELETE FROM service_tokens");
    for (const t of sorted)
      this.sql.exec("INSERT INTO service_tokens (id, secret_sha256) VALUES (?, ?)", t.id, t.secret_sha256);
    return true;
  }

  removeReplica(service: string, id: string): boolean {
    const cursor = this.sql.exec("DELETE FROM service_replicas WHERE service = ? AND id = ?", service, id);
    cursor.toArray();
    return cursor.rowsWritten > 0;
  }

  hasReplica(service: string, id: string): boolean {
    return (
      this.sql.exec("SELECT 1 FROM service_replicas WHERE service = ? AND id = ?", service, id).toArray().length > 0
    );
  }

  /** How many replicas a service has registered (indexed). */
  replicaCount(service: string): number {
    return Number(
      this.sql.exec("SELECT COUNT(*) AS n FROM service_replicas WHERE service = ?", service).toArray()[0]?.n ?? 0,
    );
  }
}
