/**
 * @module
 * The associated data of every sealed value (AES-256-GCM, `core/crypto.ts`): it binds a ciphertext to
 * its row, so a value copied to another project, kind or webhook does not open. The Worker seals with
 * these names and the objects open with them, so both import them from here.
 */
import { ACME_CREDENTIAL_TYPE } from "../schema/acme.ts";

/** A project's sealed setting of one kind (`aws`, `dns:cloudflare`, `acme`…) in `backend_credentials`. */
export const sealedAad = (projectId: string, kind: string) => `${projectId}/${kind}`;

/** The project's ACME account and settings. */
export const acmeAad = (projectId: string) => sealedAad(projectId, ACME_CREDENTIAL_TYPE);

/** A webhook endpoint's signing secret in its `webhooks` row. */
export const secretAad = (webhookId: string) => `webhook/${webhookId}`;
