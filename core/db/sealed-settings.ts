/**
 * @module
 * A project's sealed settings in `backend_credentials`, one row per kind: cloud credentials
 * (`aws`, `gcp`…), DNS providers (`dns:cloudflare`), ACME (`acme`). AES-256-GCM with the row's
 * `<project>/<kind>` as associated data, so a row copied to another project or kind does not open.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { sealedAad } from "../aad.ts";
import { openJson, sealJson } from "../crypto.ts";
import type { Env } from "../env.ts";
import { backendCredentials } from "./schema.ts";

type Keys = Pick<Env, "DB" | "CREDENTIALS_KEY">;

const row = (projectId: string, kind: string) =>
  and(eq(backendCredentials.projectId, projectId), eq(backendCredentials.type, kind));

/** Seals and stores `value`, replacing the kind's previous row; returns its `updated_at`. */
export async function storeSealed(env: Keys, projectId: string, kind: string, value: unknown): Promise<string> {
  const sealed = await sealJson(env.CREDENTIALS_KEY, value, sealedAad(projectId, kind));
  const now = new Date().toISOString();
  await drizzle(env.DB)
    .insert(backendCredentials)
    .values({ projectId, type: kind, ...sealed, updatedAt: now })
    .onConflictDoUpdate({
      target: [backendCredentials.projectId, backendCredentials.type],
      set: { ...sealed, updatedAt: now },
    });
  return now;
}

/** The opened value, or null when the project has none of this kind. */
export async function loadSealed(env: Keys, projectId: string, kind: string): Promise<unknown | null> {
  const found = await drizzle(env.DB).select().from(backendCredentials).where(row(projectId, kind)).get();
  return found ? openJson(env.CREDENTIALS_KEY, found, sealedAad(projectId, kind)) : null;
}

export async function removeSealed(env: Keys, projectId: string, kind: string): Promise<void> {
  await drizzle(env.DB).delete(backendCredentials).where(row(projectId, kind));
}
