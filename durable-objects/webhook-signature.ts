/**
 * @module
 * The `Gateplane-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * (Stripe's scheme). Signing the timestamp with the body lets a receiver refuse replays of old
 * deliveries; one `v1=` per live secret lets a receiver switch secrets during a rotation.
 */
const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function signatureHeader(secrets: readonly string[], timestamp: number, body: string): Promise<string> {
  const macs = await Promise.all(secrets.map((s) => hmacHex(s, `${timestamp}.${body}`)));
  return [`t=${timestamp}`, ...macs.map((m) => `v1=${m}`)].join(",");
}
