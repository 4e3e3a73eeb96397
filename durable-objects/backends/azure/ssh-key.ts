/**
 * @module
 * Azure Linux VMs need a login method. Gateways get an SSH public key whose private half is
 * never kept: nobody can log in (and the NSG does not open 22), the agent needs no SSH.
 */
const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

function mpint(b64url: string): Uint8Array {
  let bytes = Uint8Array.from(atob(b64url.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
  if (bytes[0]! & 0x80) bytes = new Uint8Array([0, ...bytes]);
  return new Uint8Array([...u32(bytes.length), ...bytes]);
}

export async function throwawaySshPublicKey(): Promise<string> {
  const pair = (await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  const type = new TextEncoder().encode("ssh-rsa");
  const blob = new Uint8Array([...u32(type.length), ...type, ...mpint(jwk.e!), ...mpint(jwk.n!)]);
  return `ssh-rsa ${btoa(String.fromCharCode(...blob))} gateplane-no-login`;
}
