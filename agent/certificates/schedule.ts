/**
 * @module
 * When to renew a certificate and when to try again after a failure. Pure functions of the clock,
 * so tests drive them with any time they like.
 *
 * - Renewal: at the CA's ACME Renewal Information window when it offers one (RFC 9773: a random
 *   moment inside `suggestedWindow`), else when a third of the lifetime is left (certmagic's
 *   `DefaultRenewalWindowRatio`): 90-day certificates at 30 days left, 45-day ones at 15.
 * - Failures: 1 minute doubling to 6 hours, never sooner than the CA's `Retry-After`. The ladder
 *   stays inside Let's Encrypt's failed-validation limit (5 per hostname per hour, one back every
 *   12 minutes): the first five failures fall within 15 minutes, every later gap is 16 minutes or more.
 */

export const RENEWAL_CHECK_INTERVAL_MS = 10 * 60_000;
export const FAILURE_INITIAL_MS = 60_000;
export const FAILURE_MAX_MS = 6 * 3_600_000;

export interface CertificateTimes {
  notBefore: number;
  notAfter: number;
}

/** ARI's answer (RFC 9773 §4.2), in epoch milliseconds. */
export interface RenewalWindow {
  start: number;
  end: number;
}

/** The moment to renew without ARI: when a third of the lifetime is left. */
export function ratioRenewalAt(cert: CertificateTimes): number {
  return cert.notAfter - (cert.notAfter - cert.notBefore) / 3;
}

/**
 * The moment to renew: a point in the ARI window picked with `random` (stable for one window when
 * the caller keeps the draw), else the ratio. A window that ends after expiry is ignored (a CA bug).
 */
export function renewalAt(cert: CertificateTimes, window: RenewalWindow | null, draw: number): number {
  if (window && window.end > window.start && window.end <= cert.notAfter) {
    return window.start + draw * (window.end - window.start);
  }
  return ratioRenewalAt(cert);
}

/** Wait before retry number `attempt` (0-based) after a failure, at least `retryAfterMs` when the CA said so. */
export function failureDelay(attempt: number, retryAfterMs: number | null): number {
  const ladder = Math.min(FAILURE_MAX_MS, FAILURE_INITIAL_MS * 2 ** Math.min(attempt, 20));
  return Math.max(ladder, retryAfterMs ?? 0);
}

/** `Retry-After` (seconds or an HTTP date) in milliseconds from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
