/**
 * @module
 * ACME Renewal Information (RFC 9773), which acme-client 5.4 does not speak: the certificate's
 * ARI identifier and a fetch of its suggested renewal window from the directory's `renewalInfo`.
 */
import { X509Certificate } from "node:crypto";
import type { RenewalWindow } from "./schedule.ts";

const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);

/** Reads one DER TLV at `offset`: [tag, content start, content end]. */
function tlv(der: Buffer, offset: number): [number, number, number] {
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  return [tag, start, start + length];
}

/** The Authority Key Identifier's keyIdentifier, or null when the certificate has none. */
export function authorityKeyIdentifier(der: Buffer): Buffer | null {
  const at = der.indexOf(AKI_OID);
  if (at === -1) return null;
  let [tag, start, end] = tlv(der, at + AKI_OID.length);
  // An optional `critical` BOOLEAN before the extnValue OCTET STRING.
  if (tag === 0x01) [tag, start, end] = tlv(der, end);
  if (tag !== 0x04) return null;
  const [seqTag, seqStart, seqEnd] = tlv(der, start);
  if (seqTag !== 0x30 || seqEnd > end) return null;
  const [idTag, idStart, idEnd] = tlv(der, seqStart);
  return idTag === 0x80 ? der.subarray(idStart, idEnd) : null;
}

/** Serial number as DER INTEGER content bytes (a leading zero kept when the high bit is set). */
function serialBytes(hex: string): Buffer {
  let even = hex.length % 2 ? `0${hex}` : hex;
  if (Number.parseInt(even.slice(0, 2), 16) & 0x80) even = `00${even}`;
  return Buffer.from(even, "hex");
}

/** RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial). */
export function certId(pem: string): string | null {
  const cert = new X509Certificate(pem);
  const aki = authorityKeyIdentifier(cert.raw);
  if (!aki) return null;
  return `${aki.toString("base64url")}.${serialBytes(cert.serialNumber).toString("base64url")}`;
}

export interface RenewalInfo {
  window: RenewalWindow;
  /** When to ask again (the response's Retry-After), epoch ms. */
  nextCheckAt: number;
}

/**
 * GETs `<renewalInfo>/<certID>`. Null when the directory offers no ARI or the answer is unusable:
 * the caller falls back to the lifetime ratio.
 */
export async function fetchRenewalInfo(
  renewalInfoUrl: string | undefined,
  pem: string,
  fetcher: typeof fetch,
  now: number,
): Promise<RenewalInfo | null> {
  if (!renewalInfoUrl) return null;
  const id = certId(pem);
  if (!id) return null;
  const res = await fetcher(`${renewalInfoUrl.replace(/\/$/, "")}/${id}`);
  if (!res.ok) return null;
  const body = (await res.json()) as { suggestedWindow?: { start?: string; end?: string } };
  const start = Date.parse(body.suggestedWindow?.start ?? "");
  const end = Date.parse(body.suggestedWindow?.end ?? "");
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return null;
  const retry = Number(res.headers.get("retry-after"));
  // RFC 9773 §4.3: clamp the polling interval to between 1 minute and 1 day; 6 hours if unsaid.
  const seconds = Number.isFinite(retry) && retry > 0 ? Math.min(86_400, Math.max(60, retry)) : 21_600;
  return { window: { start, end }, nextCheckAt: now + seconds * 1000 };
}
