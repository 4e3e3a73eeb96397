/**
 * @module
 * What the object remembers of past changes so that it can send and write only what changed: the
 * tombstones of removed services (a delta names them in `removed`) and the services whose D1
 * catalog row is behind (the write-through writes only those). Both are rows of the object's
 * storage (`storage-schema.ts`), so they survive a restart; both are bounded.
 */

export interface DirtyService {
  name: string;
  version: number;
}

export class ChangeLog {
  constructor(private readonly sql: SqlStorage) {}

  /** A service removed at `version`. */
  tombstone(name: string, version: number): void {
    this.sql.exec("INSERT OR REPLACE INTO service_tombstones (name, version) VALUES (?, ?)", name, version);
  }

  /** A service (re-)created: its row now says more than its tombstone. */
  forgetTombstone(name: string): void {
    this.sql.exec("DELETE FROM service_tombstones WHERE name = ?", name);
  }

  /** Services removed after `version`, in name order (indexed on `version`). */
  removedSince(version: number): string[] {
    return this.sql
      .exec("SELECT name FROM service_tombstones WHERE version > ? ORDER BY name", version)
      .toArray()
      .map((r) => r.name as string);
  }

  /**
   * Keeps the `keep` newest tombstones once there are more than twice as many (so pruning is paid
   * once per `keep` removals, not at each); returns the newest version pruned, or null. An agent
   * below it cannot be told what was removed: it gets a whole document.
   */
  pruneTombstones(keep: number): number | null {
    const count = Number(this.sql.exec("SELECT COUNT(*) AS n FROM service_tombstones").toArray()[0]?.n ?? 0);
    if (count <= keep * 2) return null;
    const row = this.sql
      .exec("SELECT version FROM service_tombstones ORDER BY version DESC LIMIT 1 OFFSET ?", keep)
      .toArray()[0];
    if (!row) return null;
    const floor = Number(row.version);
    this.sql.exec("DELETE FROM service_tombstones WHERE version <= ?", floor);
    return floor;
  }

  /** A service whose catalog row must be written (upserted, or deleted when the service is gone). */
  markDirty(name: string, version: number): void {
    this.sql.exec("INSERT OR REPLACE INTO catalog_dirty (name, version) VALUES (?, ?)", name, version);
  }

  /** The services waiting for the catalog, at most `limit` (a D1 batch stays bounded). */
  dirty(limit: number): DirtyService[] {
    return this.sql
      .exec("SELECT name, version FROM catalog_dirty ORDER BY version, name LIMIT ?", limit)
      .toArray() as unknown as DirtyService[];
  }

  /** The rows written: a service marked again meanwhile (a newer version) stays marked. */
  ackDirty(written: DirtyService[]): void {
    for (const d of written)
      this.sql.exec("DELETE FROM catalog_dirty WHERE name = ? AND version <= ?", d.name, d.version);
  }

  /** Any service left for the catalog (the write-through runs again while there is). */
  hasDirty(): boolean {
    return this.sql.exec("SELECT 1 FROM catalog_dirty LIMIT 1").toArray().length > 0;
  }
}
