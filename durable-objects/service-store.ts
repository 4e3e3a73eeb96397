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

export class ServiceStore {
  constructor(private readonly sql: SqlStorage) {}

  list(): ServiceRow[] {
    return this.sql
      .exec("SELECT * FROM services ORDER BY name")
      .toArray()
      .map((r: Row) => ({
        ...(r as unknown as ServiceRow),
        // Stored by this or an older version: fields added since get their defaults.
        configuration: storedServiceConfiguration(JSON.parse(r.configuration as string)),
      }));
  }

  get(name: string): ServiceRow | null {
    return this.list().find((s) => s.name === name) ?? null;
  }

  upsert(row: ServiceRow): void {
    this.sql.exec(
      `INSERT INTO services (name, id, configuration, configuration_path, created_at, updated_at, config_version)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET configuration = excluded.configuration,
         configuration_path = excluded.configuration_path, updated_at = excluded.updated_at,
         config_version = excluded.config_version`,
      row.name,
      row.id,
      JSON.stringify(row.configuration),
      row.configuration_path,
      row.created_at,
      row.updated_at,
      row.config_version,
    );
  }

  touch(name: string, configVersion: number): void {
    this.sql.exec(
      "UPDATE services SET config_version = ?, updated_at = ? WHERE name = ?",
      configVersion,
      new Date().toISOString(),
      name,
    );
  }

  remove(name: string): void {
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
    const existing = this.replicas(service).find((r) => r.id === id);
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
    const existing = this.replicas(service).some((r) => r.id === id);
    if (existing) this.sql.exec("DELETE FROM service_replicas WHERE service = ? AND id = ?", service, id);
    return existing;
  }
}
