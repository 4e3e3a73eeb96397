/**
 * @module
 * A service's traffic history in its gateway's object: one row per service and minute
 * (`service-rollup.ts` says what a row holds), written when an agent reports and kept for 24 hours.
 * Bounded: 1 440 rows per service at most (about 250 bytes each, ~360 KB per service), older rows
 * deleted whenever a new minute starts, and a service's rows go with the service.
 */
import type { MetricsPoint, MetricsRange } from "../schema/service-metrics.ts";
import { desiredTotal } from "./role-scaling.ts";
import { MINUTE_MS, type RollupRow, rangePoints, sampleMinute } from "./service-rollup.ts";
import type { ServiceStore } from "./service-store.ts";
import type { ReplicaRow } from "./storage-schema.ts";

export const HISTORY_MS = 24 * 60 * MINUTE_MS;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS service_rollups (
  service TEXT NOT NULL,
  minute INTEGER NOT NULL,
  at INTEGER NOT NULL,
  reporting INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  tokens_in INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  ttft TEXT NOT NULL,
  itl TEXT NOT NULL,
  desired INTEGER,
  registered INTEGER NOT NULL,
  PRIMARY KEY (service, minute)
);
CREATE INDEX IF NOT EXISTS service_rollups_minute ON service_rollups (minute);
`;

export class ServiceHistory {
  constructor(private readonly sql: SqlStorage) {}

  migrate(): void {
    this.sql.exec(SCHEMA);
  }

  /**
   * Samples every service after an agent's report (`replicas`: the gateway's rows). Synchronous, so
   * it commits with the report that caused it.
   */
  record(store: ServiceStore, replicas: readonly ReplicaRow[], now: number): void {
    const running = replicas.filter((r) => r.status === "running");
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const newMinute =
      this.sql.exec("SELECT 1 FROM service_rollups WHERE minute = ? LIMIT 1", minute).toArray().length === 0;
    for (const s of store.list()) {
      const row = sampleMinute(
        s.name,
        running,
        { desired: desiredTotal(store, s.name), registered: store.replicas(s.name).length },
        now,
      );
      if (row) this.put(row);
    }
    // Once per minute: drop what fell out of the 24 hours, and the rows of removed services.
    if (newMinute) {
      this.sql.exec("DELETE FROM service_rollups WHERE minute < ?", now - HISTORY_MS);
      this.sql.exec("DELETE FROM service_rollups WHERE service NOT IN (SELECT name FROM services)");
    }
  }

  /** The points of `range` ending at `now` (`schema/service-metrics.ts`). */
  points(service: string, range: MetricsRange, now: number): MetricsPoint[] {
    const rows = this.sql
      .exec(
        "SELECT * FROM service_rollups WHERE service = ? AND minute >= ? ORDER BY minute",
        service,
        now - HISTORY_MS,
      )
      .toArray() as unknown as RollupRow[];
    return rangePoints(rows, range, now);
  }

  private put(r: RollupRow): void {
    this.sql.exec(
      `INSERT INTO service_rollups (service, minute, at, reporting, requests, errors, tokens_in, tokens_out, ttft, itl,
         desired, registered)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (service, minute) DO UPDATE SET at = excluded.at, reporting = excluded.reporting,
         requests = excluded.requests, errors = excluded.errors, tokens_in = excluded.tokens_in,
         tokens_out = excluded.tokens_out, ttft = excluded.ttft, itl = excluded.itl, desired = excluded.desired,
         registered = excluded.registered`,
      r.service,
      r.minute,
      r.at,
      r.reporting,
      r.requests,
      r.errors,
      r.tokens_in,
      r.tokens_out,
      r.ttft,
      r.itl,
      r.desired,
      r.registered,
    );
  }
}
