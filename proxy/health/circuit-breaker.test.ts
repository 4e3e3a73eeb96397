import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./circuit-breaker.ts";
import { DEFAULT_BREAKER } from "./service-health.ts";

describe("circuit breaker", () => {
  it("opens after 10 failures in a row, half-opens after 60 s, closes after 3 successes", () => {
    const b = new CircuitBreaker(DEFAULT_BREAKER);
    for (let i = 0; i < 9; i++) expect(b.failure(1000 + i, "HTTP 500")).toBe(false);
    expect(b.state(1009)).toBe("closed");
    expect(b.failure(1010, "HTTP 500")).toBe(true);
    expect(b.state(1010)).toBe("open");
    expect(b.reason).toMatch(/10 failures in a row/);
    expect(b.state(61_009)).toBe("open");
    expect(b.state(61_010)).toBe("half_open");
    expect(b.success(61_011)).toBe(false);
    expect(b.success(61_012)).toBe(false);
    expect(b.success(61_013)).toBe(true);
    expect(b.state(61_013)).toBe("closed");
    expect(b.opens).toBe(1);
  });

  it("a failed half-open probe opens it again", () => {
    const b = new CircuitBreaker({ ...DEFAULT_BREAKER, consecutiveFailures: 1 });
    b.failure(0, "x");
    expect(b.state(60_000)).toBe("half_open");
    b.success(60_001);
    expect(b.failure(60_002, "y")).toBe(true);
    expect(b.state(60_003)).toBe("open");
    expect(b.opensUntil).toBe(120_002);
  });

  it("opens on the error rate within the window, and not on old failures", () => {
    const b = new CircuitBreaker(DEFAULT_BREAKER); // 50 % of at least 20 in 60 s
    let t = 0;
    // Alternate: never 10 in a row.
    for (let i = 0; i < 18; i++) {
      t += 100;
      if (i % 2) b.success(t);
      else b.failure(t, "HTTP 500");
    }
    expect(b.state(t)).toBe("closed");
    b.success(t + 100);
    expect(b.failure(t + 200, "HTTP 500")).toBe(true);
    expect(b.reason).toMatch(/10 of 20 requests failed in 60s/);

    const c = new CircuitBreaker(DEFAULT_BREAKER);
    for (let i = 0; i < 9; i++) c.failure(i, "old");
    c.success(10);
    for (let i = 0; i < 11; i++) c.success(120_000 + i);
    // The 9 old failures left the window: 1 of 12.
    expect(c.failure(120_100, "new")).toBe(false);
  });
});
