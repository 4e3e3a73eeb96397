/**
 * @module
 * The project's ACME settings as one gateway's object holds them: a copy of the sealed D1 row in
 * the object's storage (the HMAC key stays encrypted at rest here too), opened once when the object
 * wakes, and the `acme` part of the configuration document derived from it and the gateway's own
 * `certificate:` settings.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import * as v from "valibot";
import { acmeAad } from "../core/aad.ts";
import { openJson } from "../core/crypto.ts";
import { backendCredentials } from "../core/db/schema.ts";
import type { Env } from "../core/env.ts";
import { ACME_CREDENTIAL_TYPE, ProjectAcmeRequest, type ProjectAcmeSettings } from "../schema/acme.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { GatewayRow } from "./state.ts";

export interface SealedAcme {
  ciphertext: string;
  iv: string;
}

/** Opens a sealed row; a row that no longer opens (rotated key, damage) counts as no settings. */
export async function openProjectAcme(
  env: Pick<Env, "CREDENTIALS_KEY">,
  projectId: string,
  sealed: SealedAcme | null,
): Promise<ProjectAcmeSettings | null> {
  if (!sealed) return null;
  try {
    return v.parse(ProjectAcmeRequest, await openJson(env.CREDENTIALS_KEY, sealed, acmeAad(projectId)));
  } catch {
    console.error(`project ${projectId}: the stored ACME settings cannot be opened; using none`);
    return null;
  }
}

/** The project's sealed row in D1, or null. */
export async function readProjectAcmeRow(env: Pick<Env, "DB">, projectId: string): Promise<SealedAcme | null> {
  const row = await drizzle(env.DB)
    .select({ ciphertext: backendCredentials.ciphertext, iv: backendCredentials.iv })
    .from(backendCredentials)
    .where(and(eq(backendCredentials.projectId, projectId), eq(backendCredentials.type, ACME_CREDENTIAL_TYPE)))
    .get();
  return row ?? null;
}

export class ProjectAcmeStore {
  constructor(private readonly sql: SqlStorage) {}

  migrate(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS project_acme (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), ciphertext TEXT NOT NULL, iv TEXT NOT NULL)",
    );
  }

  get(): SealedAcme | null {
    const row = this.sql.exec("SELECT ciphertext, iv FROM project_acme WHERE singleton = 1").toArray()[0];
    return row ? { ciphertext: row.ciphertext as string, iv: row.iv as string } : null;
  }

  put(sealed: SealedAcme | null): void {
    if (!sealed) {
      this.sql.exec("DELETE FROM project_acme");
      return;
    }
    this.sql.exec(
      `INSERT INTO project_acme (singleton, ciphertext, iv) VALUES (1, ?, ?)
       ON CONFLICT(singleton) DO UPDATE SET ciphertext = excluded.ciphertext, iv = excluded.iv`,
      sealed.ciphertext,
      sealed.iv,
    );
  }
}

/**
 * The document's `acme`: the gateway's `acme_server` wins over the project's directory. The
 * project's EAB belongs to the project's directory (an EAB key is issued by one CA), so it is sent
 * only when the effective directory is that one; a gateway pointed at another CA registers without.
 */
export function documentAcme(g: GatewayRow, project: ProjectAcmeSettings | null): ConfigDocument["acme"] {
  const certificate = g.configuration.certificate;
  if (!g.configuration.domain || certificate?.type !== "lets-encrypt") return null;
  const projectDirectory = project?.directory_url ?? null;
  const directory = certificate.acme_server ?? projectDirectory;
  const eab = project?.eab && directory === projectDirectory ? project.eab : null;
  return {
    directory_url: directory,
    eab: eab ? { kid: eab.kid, hmac_key: eab.hmac_key } : null,
    email: project?.email ?? null,
  };
}
