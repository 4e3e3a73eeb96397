import { describe, expect, it } from "vitest";
import { newRequestId, newSpanId, newTraceId, randomHex, requestIdFrom, taggedRequestId, tagRequest } from "./ids.ts";

describe("request and trace ids", () => {
  it("are lowercase hex of the right length, and differ across a pool refill", () => {
    const ids = new Set<string>();
    // 1 000 × 40 bytes: the 4 KiB pool refills about ten times.
    for (let i = 0; i < 1_000; i++) {
      const request = newRequestId();
      const trace = newTraceId();
      const span = newSpanId();
      expect(request).toMatch(/^[0-9a-f]{32}$/);
      expect(trace).toMatch(/^[0-9a-f]{32}$/);
      expect(span).toMatch(/^[0-9a-f]{16}$/);
      ids.add(request).add(trace).add(span);
    }
    expect(ids.size).toBe(3_000);
    expect(randomHex(3)).toMatch(/^[0-9a-f]{6}$/);
  });

  it("keep a client's usable X-Request-Id and replace anything else", () => {
    for (const usable of ["abc", "5f0c6a2e-9b1d-4c7a-8e3f-2b1a0c9d8e7f", "req_01J!~", "x".repeat(200)]) {
      expect(requestIdFrom(usable)).toBe(usable);
    }
    for (const unusable of ["", "has space", "tab\there", "x".repeat(201), "caf\u00e9", "line\nbreak", "\u007f"]) {
      const id = requestIdFrom(unusable);
      expect(id).not.toBe(unusable);
      expect(id).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(requestIdFrom(undefined)).toMatch(/^[0-9a-f]{32}$/);
  });

  it("ride on a response or socket for the replies made by the gateway", () => {
    const res = {};
    expect(taggedRequestId(res)).toBeUndefined();
    tagRequest(res, { requestId: "r-1", trace: null });
    expect(taggedRequestId(res)).toBe("r-1");
  });
});
