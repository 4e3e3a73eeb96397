/**
 * @module
 * Microsoft identity platform v2 client-credentials flow → an ARM access token, with a client
 * secret or a certificate: then the client proves itself with a JWT assertion signed by the
 * certificate's key (RS256, `x5t` = base64url SHA-1 thumbprint of the certificate, as Entra ID
 * expects). Tokens are cached per isolate until a minute before expiry.
 */
import { importPKCS8, SignJWT } from "jose";
import { requestToken, TokenCache } from "../clouds/oauth-token.ts";
import { sha256Hex } from "../clouds/rest.ts";
import { BackendError } from "../types.ts";

export interface AzureIdentity {
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  certificate?: { private_key_pem: string; certificate_pem: string };
  authorityHost: string;
  /** The token's audience, e.g. https://management.azure.com (`/.default` is appended). */
  resource: string;
}

const cache = new TokenCache();

const b64url = (bytes: ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");

function pemBody(pem: string, label: string): Uint8Array {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pem);
  if (!m) throw new Error(`no ${label} block`);
  return Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (ch) => ch.charCodeAt(0));
}

const invalid = (field: string, why: string) =>
  new BackendError("InvalidCredentials", `Azure Error: InvalidCredentials: ${field}: ${why}`, { retryable: false });

/** The JWT that stands in for a client secret (RFC 7523 client authentication). */
async function clientAssertion(id: AzureIdentity, tokenUrl: string): Promise<string> {
  const cert = id.certificate!;
  let der: Uint8Array;
  try {
    der = pemBody(cert.certificate_pem, "CERTIFICATE");
  } catch {
    throw invalid("client_certificate.certificate_pem", "expected a PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  let key: Awaited<ReturnType<typeof importPKCS8>>;
  try {
    key = await importPKCS8(cert.private_key_pem, "RS256");
  } catch {
    throw invalid(
      "client_certificate.private_key_pem",
      "expected an unencrypted PKCS#8 PEM RSA key (-----BEGIN PRIVATE KEY-----)",
    );
  }
  const x5t = b64url(await crypto.subtle.digest("SHA-1", der));
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", typ: "JWT", x5t })
    .setIssuer(id.clientId)
    .setSubject(id.clientId)
    .setAudience(tokenUrl)
    .setJti(crypto.randomUUID())
    .setNotBefore("0s")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(key);
}

const cacheKey = async (id: AzureIdentity) =>
  `${id.authorityHost}|${id.tenantId}|${id.clientId}|${await sha256Hex(id.clientSecret ?? id.certificate?.private_key_pem ?? "")}`;

/** Forgets the cached token (ARM answered 401 to it). */
export async function forgetArmToken(id: AzureIdentity): Promise<void> {
  cache.forget(await cacheKey(id));
}

export async function armToken(id: AzureIdentity, timeoutMs: number): Promise<string> {
  const k = await cacheKey(id);
  const hit = cache.get(k);
  if (hit) return hit;

  const tokenUrl = `${id.authorityHost}/${encodeURIComponent(id.tenantId)}/oauth2/v2.0/token`;
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: id.clientId,
    scope: `${id.resource}/.default`,
  });
  if (id.certificate) {
    form.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.set("client_assertion", await clientAssertion(id, tokenUrl));
  } else {
    form.set("client_secret", id.clientSecret ?? "");
  }
  const { token, expiresInSeconds } = await requestToken({ url: tokenUrl, form, timeoutMs, cloud: "Azure" });
  cache.set(k, token, expiresInSeconds);
  return token;
}
