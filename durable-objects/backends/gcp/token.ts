/**
 * @module
 * Service-account key → OAuth2 access token, the JWT-bearer flow (RFC 7523) Google's own clients
 * use: an RS256 assertion signed with the key, posted to the key's `token_uri`. Tokens are kept
 * per isolate until a minute before they expire, so a reconciler pass signs at most once an hour.
 */
import { importPKCS8, SignJWT } from "jose";
import { requestToken, TokenCache } from "../clouds/oauth-token.ts";
import { sha256Hex } from "../clouds/rest.ts";
import { BackendError } from "../types.ts";

const COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute";
export const DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token";

export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

const cache = new TokenCache();

/** Forgets cached tokens (a 401 from the API means the cached one is no longer good). */
export function forgetToken(key: ServiceAccountKey, tokenUri: string): Promise<void> {
  return cacheKey(key, tokenUri).then((k) => cache.forget(k));
}

const cacheKey = async (key: ServiceAccountKey, tokenUri: string) =>
  `${tokenUri}|${key.client_email}|${await sha256Hex(key.private_key)}`;

export async function accessToken(key: ServiceAccountKey, tokenUri: string, timeoutMs: number): Promise<string> {
  const k = await cacheKey(key, tokenUri);
  const hit = cache.get(k);
  if (hit) return hit;

  let signingKey: Awaited<ReturnType<typeof importPKCS8>>;
  try {
    signingKey = await importPKCS8(key.private_key.replaceAll("\\n", "\n"), "RS256");
  } catch (cause) {
    throw new BackendError(
      "InvalidKey",
      "GCP Error: invalid_key: service_account_key.private_key is not a PKCS#8 PEM RSA key",
      { retryable: false, cause },
    );
  }
  const assertion = await new SignJWT({ scope: COMPUTE_SCOPE })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(key.private_key_id ? { kid: key.private_key_id } : {}) })
    .setIssuer(key.client_email)
    .setAudience(tokenUri)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(signingKey);
  const { token, expiresInSeconds } = await requestToken({
    url: tokenUri,
    form: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
    timeoutMs,
    cloud: "GCP",
  });
  cache.set(k, token, expiresInSeconds);
  return token;
}
