/**
 * @module
 * Turns drizzle queries and `sql` fragments into D1 prepared statements for `D1Database.batch`
 * (one implicit transaction). drizzle's own batch cannot mix raw `sql` statements in.
 */
import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";

const dialect = new SQLiteSyncDialect();

export type Statement = SQL | { toSQL(): { sql: string; params: unknown[] } };

export function prepare(db: D1Database, statement: Statement): D1PreparedStatement {
  const query = "toSQL" in statement ? statement.toSQL() : dialect.sqlToQuery(statement);
  return db.prepare(query.sql).bind(...query.params);
}

/** Runs statements atomically; any failure rolls them all back. */
export function batch(db: D1Database, statements: Statement[]): Promise<D1Result[]> {
  return db.batch(statements.map((s) => prepare(db, s)));
}
