/**
 * @module
 * Small crypto helpers on WebCrypto: token generation, hashing, constant-time comparison, and the
 * AES-GCM envelope for backends' credentials.
 */
const encoder = new TextEncoder();
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `n` random base62 characters (rejection sampling keeps them uniform). */
export function randomBase62(n: number): string {
  let out = "";
  while (out.length < n) {
    for (const b of crypto.getRandomValues(new Uint8Array(n * 2))) {
      if (b < 248 && out.length < n) out += BASE62[b % 62];
    }
  }
  return out;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compares two secrets in time independent of where they differ: both are hashed first, so the
 * comparison is over equal-length digests and leaks neither content nor length.
 */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

/** Constant-time equality of two hex digests of the same algorithm. */
export function digestsEqual(hexA: string, hexB: string): boolean {
  const a = encoder.encode(hexA);
  const b = encoder.encode(hexB);
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

const b64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function credentialsKey(keyB64: string): Promise<CryptoKey> {
  const raw = unb64(keyB64);
  if (raw.byteLength !== 32) throw new Error("CREDENTIALS_KEY must be base64 of 32 bytes");
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Encrypts JSON with AES-256-GCM; `aad` binds the ciphertext to its row (project and backend). */
export async function sealJson(
  keyB64: string,
  value: unknown,
  aad: string,
): Promise<{ ciphertext: string; iv: string }> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(aad) },
    await credentialsKey(keyB64),
    encoder.encode(JSON.stringify(value)),
  );
  return { ciphertext: b64(new Uint8Array(sealed)), iv: b64(iv) };
}

export async function openJson(
  keyB64: string,
  sealed: { ciphertext: string; iv: string },
  aad: string,
): Promise<unknown> {
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: unb64(sealed.iv), additionalData: encoder.encode(aad) },
    await credentialsKey(keyB64),
    unb64(sealed.ciphertext),
  );
  return JSON.parse(new TextDecoder().decode(plain));
}
