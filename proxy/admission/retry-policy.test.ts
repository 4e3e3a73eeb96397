import { describe, expect, it } from "vitest";
import { DEFAULT_RETRIES } from "../../schema/resilience.ts";
import { RetryBudget } from "./retry-budget.ts";
import { BACKOFF_CAP_MS, backoffMs, decideRetry, type Failure, RetryPolicy, type RetryState } from "./retry-policy.ts";

const fresh = (over: Partial<RetryState> = {}): RetryState => ({
  attempts: 1,
  relayed: false,
  replayable: true,
  otherReplica: true,
  ...over,
});
/** A budget that never runs out (100 % plus a large floor). */
const plenty = () => new RetryBudget(100, 1000);
const decide = (failure: Failure, over: Partial<RetryState> = {}, policy = new RetryPolicy(), budget = plenty()) =>
  decideRetry(policy, budget, failure, fresh(over), 0, 0.5);

describe("the retry decision", () => {
  it("retries 429, 502, 503, 504, resets and timeouts by default, not 500 nor other statuses", () => {
    for (const f of [429, 502, 503, 504, "reset", "timeout", "connect"] as const)
      expect(decide(f).retry, String(f)).toBe(true);
    for (const f of [500, 400, 404, 501, 200, "other"] as const)
      expect(decide(f), String(f)).toEqual({ retry: false, reason: null });
  });

  it("follows a service's own statuses and switches", () => {
    const policy = new RetryPolicy({ ...DEFAULT_RETRIES, statuses: [500], on_reset: false, on_timeout: false });
    expect(decide(500, {}, policy).retry).toBe(true);
    expect(decide(503, {}, policy).retry).toBe(false);
    expect(decide("reset", {}, policy).retry).toBe(false);
    expect(decide("timeout", {}, policy).retry).toBe(false);
    // A replica that was never reached is always tried elsewhere: it received nothing.
    expect(decide("connect", {}, policy).retry).toBe(true);
  });

  it("takes a 429 with or without Retry-After to another replica after the back-off, not the replica's wait", () => {
    // Retry-After speaks for the replica that sent it; the retry goes to another one.
    expect(decide(429)).toEqual({ retry: true, delayMs: 50 });
  });

  it("never retries once a byte went to the client (a stream included)", () => {
    for (const f of [502, 503, "reset", "timeout", "connect"] as const)
      expect(decide(f, { relayed: true }), String(f)).toEqual({ retry: false, reason: null });
  });

  it("stops at `attempts` in all", () => {
    expect(decide(503, { attempts: 2 }).retry).toBe(true);
    expect(decide(503, { attempts: 3 })).toEqual({ retry: false, reason: "attempts" });
    const one = new RetryPolicy({ ...DEFAULT_RETRIES, attempts: 1 });
    expect(decide("connect", {}, one)).toEqual({ retry: false, reason: "attempts" });
  });

  it("does not replay a body past the buffer bound, except to a replica that never received it", () => {
    expect(decide(503, { replayable: false })).toEqual({ retry: false, reason: "body" });
    expect(decide("reset", { replayable: false })).toEqual({ retry: false, reason: "body" });
    expect(decide("connect", { replayable: false })).toEqual({ retry: true, delayMs: 0 });
  });

  it("needs another replica", () => {
    expect(decide(503, { otherReplica: false })).toEqual({ retry: false, reason: "replicas" });
  });

  it("retries a replica never reached at once and outside the budget", () => {
    const empty = new RetryBudget(0, 0);
    expect(decide("connect", {}, new RetryPolicy(), empty)).toEqual({ retry: true, delayMs: 0 });
    expect(decide(503, {}, new RetryPolicy(), empty)).toEqual({ retry: false, reason: "budget" });
  });
});

describe("the back-off", () => {
  it("is 50 ms × 1.5^n with ± 20 % jitter, capped at 1 s", () => {
    expect(backoffMs(1, 0.5)).toBe(50);
    expect(backoffMs(2, 0.5)).toBe(75);
    expect(backoffMs(3, 0.5)).toBeCloseTo(112.5);
    expect(backoffMs(1, 0)).toBeCloseTo(40);
    expect(backoffMs(1, 0.999999)).toBeCloseTo(60);
    expect(backoffMs(20, 0.5)).toBe(BACKOFF_CAP_MS);
    expect(backoffMs(20, 0.999999)).toBeLessThanOrEqual(BACKOFF_CAP_MS * 1.2);
  });
});

describe("the retry budget", () => {
  it("allows 20 % of the window's requests plus the floor, then refuses", () => {
    const budget = new RetryBudget(20, 0);
    for (let i = 0; i < 100; i++) budget.request(1_000 + i);
    let taken = 0;
    while (budget.take(2_000)) taken++;
    expect(taken).toBe(20);
  });

  it("always allows the floor of retries per second over the 10-s window", () => {
    const budget = new RetryBudget(20, 3);
    let taken = 0;
    while (budget.take(0)) taken++;
    expect(taken).toBe(30);
    // Split between the host's processes: each gets its share of the floor.
    const shared = new RetryBudget(20, 3, 2);
    taken = 0;
    while (shared.take(0)) taken++;
    expect(taken).toBe(15);
  });

  it("forgets requests and retries older than 10 s", () => {
    const budget = new RetryBudget(50, 0);
    for (let i = 0; i < 10; i++) budget.request(0);
    for (let i = 0; i < 5; i++) expect(budget.take(500)).toBe(true);
    expect(budget.take(9_999)).toBe(false);
    // The first second left the window: its requests and retries with it.
    expect(budget.take(10_000)).toBe(false);
    budget.request(10_000);
    budget.request(10_000);
    expect(budget.take(10_001)).toBe(true);
    expect(budget.take(10_002)).toBe(false);
    // After a long quiet spell, the window starts empty.
    expect(budget.take(60_000)).toBe(false);
  });
});
