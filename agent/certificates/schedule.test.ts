/** Renewal timing, back-off and the ARI certificate identifier (RFC 9773's own example). */
import { describe, expect, it } from "vitest";
import { explainFailure } from "./acme.ts";
import { authorityKeyIdentifier } from "./ari.ts";
import { failureDelay, parseRetryAfter, ratioRenewalAt, renewalAt } from "./schedule.ts";

const DAY = 86_400_000;

describe("certificate schedule", () => {
  it("renews at a third of the lifetime left, or inside the CA's ARI window", () => {
    const cert = { notBefore: 0, notAfter: 90 * DAY };
    expect(ratioRenewalAt(cert)).toBe(60 * DAY);
    expect(ratioRenewalAt({ notBefore: 0, notAfter: 45 * DAY })).toBe(30 * DAY);
    const window = { start: 10 * DAY, end: 12 * DAY };
    expect(renewalAt(cert, window, 0)).toBe(10 * DAY);
    expect(renewalAt(cert, window, 0.5)).toBe(11 * DAY);
    // A window past expiry is a CA bug: fall back to the ratio.
    expect(renewalAt(cert, { start: 80 * DAY, end: 100 * DAY }, 0.5)).toBe(60 * DAY);
  });

  it("backs off 1 minute doubling to 6 hours, never before Retry-After", () => {
    expect([0, 1, 2, 3].map((a) => failureDelay(a, null))).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(failureDelay(30, null)).toBe(6 * 3_600_000);
    expect(failureDelay(0, 3_600_000)).toBe(3_600_000);
    expect(parseRetryAfter("120", 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 0)).toBe(10_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
  });

  it("reads the authority key identifier the ARI identifier starts with", () => {
    // RFC 9773 §4.1 example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4.
    const id = Buffer.from("69885B6B87464041E1B37B847BA0AE2CDE01C8D4", "hex");
    const ext = Buffer.concat([
      Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23, 0x04, id.length + 4, 0x30, id.length + 2, 0x80, id.length]),
      id,
    ]);
    expect(authorityKeyIdentifier(ext)?.toString("base64url")).toBe("aYhba4dGQEHhs3uEe6CuLN4ByNQ");
  });

  it("explains validation failures in terms of DNS", () => {
    expect(explainFailure("x.example.com", "Connection refused")).toMatch(
      /^DNS for x\.example\.com does not point at this gateway/,
    );
    expect(explainFailure("x.example.com", "rateLimited")).toBe("certificate for x.example.com failed: rateLimited");
  });
});
