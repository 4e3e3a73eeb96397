// Verifies a Gateplane webhook delivery (Node 18+). Pass the raw request body exactly as received.
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifyWebhook(rawBody, signatureHeader, secret, { toleranceSeconds = 300, now = Date.now() } = {}) {
  const parts = String(signatureHeader ?? "")
    .split(",")
    .map((p) => p.trim().split("="));
  const timestamp = Number(parts.find(([k]) => k === "t")?.[1]);
  const signatures = parts.filter(([k]) => k === "v1").map(([, v]) => Buffer.from(v ?? "", "hex"));
  if (!Number.isInteger(timestamp) || signatures.length === 0) return false;
  // Refuse old (replayed) or far-future deliveries.
  if (Math.abs(now / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${timestamp}.${rawBody}`).digest();
  // Several v1= appear while the endpoint's secret is being rotated: any one may match.
  return signatures.some((s) => s.length === expected.length && timingSafeEqual(s, expected));
}
