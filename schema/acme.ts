/**
 * @module
 * A project's ACME settings (`PUT/GET/DELETE /projects/:p/acme`): the CA's directory, the External
 * Account Binding some CAs require (ZeroSSL, Google Trust Services, a private CA) and a contact
 * address. Stored sealed in D1 (`backend_credentials`, kind `acme`); the HMAC key is never returned.
 */
import * as v from "valibot";
import { expected, mapping } from "./issues.ts";
import { text } from "./text.ts";

function isHttpsUrl(s: string): boolean {
  try {
    return new URL(s).protocol === "https:";
  } catch {
    return false;
  }
}

/** The `backend_credentials.type` the settings are stored under (no backend has this name). */
export const ACME_CREDENTIAL_TYPE = "acme";

export const AcmeDirectoryUrl = v.pipe(
  text(expected("a URL")),
  v.check(isHttpsUrl, "expected an https:// ACME directory URL"),
);

export const ProjectAcmeRequest = mapping({
  /** Absent or null: Let's Encrypt production. A gateway's `certificate.acme_server` overrides it. */
  directory_url: v.optional(v.nullable(AcmeDirectoryUrl), null),
  eab: v.optional(
    v.nullable(
      mapping({
        kid: v.pipe(text(expected("a key id")), v.minLength(1, "must not be empty"), v.maxLength(256, "too long")),
        /** The CA gives it base64url-encoded (RFC 8555 §7.3.4); padding is tolerated. */
        hmac_key: v.pipe(
          v.string(expected("a base64url HMAC key")),
          v.regex(/^[A-Za-z0-9_-]+={0,2}$/, "expected a base64url HMAC key (letters, digits, '-' and '_')"),
          v.minLength(16, "expected a base64url HMAC key of at least 16 characters"),
          v.maxLength(512, "too long"),
        ),
      }),
    ),
    null,
  ),
  /** Contact address registered with the account (expiry notices, CA announcements). */
  email: v.optional(
    v.nullable(v.pipe(v.string(expected("an email address")), v.email("expected an email address"))),
    null,
  ),
});
export type ProjectAcmeSettings = v.InferOutput<typeof ProjectAcmeRequest>;

/** What GET returns: everything but the HMAC key (`configured: false`: Let's Encrypt, no EAB). */
export interface ProjectAcmeView {
  configured: boolean;
  directory_url: string | null;
  email: string | null;
  has_eab: boolean;
  eab_kid: string | null;
  updated_at: string | null;
}

export const acmeView = (s: ProjectAcmeSettings | null, updatedAt: string | null): ProjectAcmeView => ({
  configured: s !== null,
  directory_url: s?.directory_url ?? null,
  email: s?.email ?? null,
  has_eab: Boolean(s?.eab),
  eab_kid: s?.eab?.kid ?? null,
  updated_at: updatedAt,
});
