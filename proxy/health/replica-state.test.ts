import { describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../balancer.ts";
import { serviceHealth } from "./service-health.ts";

const T = 1_000_000;
const setup = (random = () => 0.5, input = {}) => {
  const replicas = [new ReplicaState("s", "a", "http://a:1"), new ReplicaState("s", "b", "http://b:1")];
  const b = new Balancer(
    replicas,
    DEFAULT_HEALTH_POLICY,
    () => {},
    undefined,
    serviceHealth(healthDocument(input, true)),
    random,
  );
  return { b, a: replicas[0]!, r: replicas[1]! };
};

describe("one health state per replica", () => {
  it("a new replica takes traffic only once its first check passed, then its full share at once", () => {
    const { b, a, r } = setup();
    b.setActive(a, "healthy", "pass", null, 0);
    expect(b.state(r, 1)).toBe("unknown");
    expect(b.candidates(1, null)).toEqual([a]);
    b.setActive(r, "healthy", "pass", null, 1000);
    // Not slow-started: a random subset of a fleet just scaled out would move prefixes around.
    expect(b.state(r, 1000)).toBe("healthy");
    expect(b.weight(r, 1000)).toBe(1);
    expect(b.candidates(1000, null)).toEqual([a, r]);
  });

  it("a replica back from unhealthy slow-starts: admitted by a draw weighted by the ramp; left out only while others serve", () => {
    let draw = 0.3;
    const { b, a, r } = setup(() => draw);
    b.setActive(a, "healthy", "pass", null, T - 100_000);
    b.setActive(r, "healthy", "pass", null, T - 100_000);
    b.setActive(r, "unhealthy", "fail", "GET /health answered 500", T - 10_000);
    b.setActive(r, "healthy", "pass", null, T);
    expect(b.weight(r, T)).toBe(0.1);
    expect(b.weight(r, T + 15_000)).toBe(0.5);
    expect(b.state(r, T + 30_000)).toBe("healthy");
    expect(b.candidates(T + 3_000, null)).toEqual([a]); // weight 0.1 < 0.3
    expect(b.candidates(T + 15_000, null)).toEqual([a, r]); // weight 0.5 > 0.3
    draw = 0.99;
    expect(b.candidates(T + 3_000, [a])).toEqual([r]); // alone: the draw does not starve it
  });

  it("unhealthy is out; passing again ends a passive ejection at once", () => {
    const { b, a, r } = setup();
    b.setActive(a, "healthy", "pass", null, T - 100_000);
    b.setActive(r, "healthy", "pass", null, T - 100_000);
    for (let i = 0; i < 3; i++) b.failed(r, T + 0, "HTTP 500");
    expect(b.state(r, T + 1)).toBe("ejected");
    b.setActive(r, "healthy", "fail", "GET /health answered 500", T + 2_000);
    b.setActive(r, "unhealthy", "fail", "GET /health answered 500", T + 4_000);
    expect(b.state(r, T + 20_000)).toBe("unhealthy");
    b.setActive(r, "unhealthy", "pass", null, T + 20_000);
    expect(b.state(r, T + 20_000)).toBe("unhealthy");
    b.setActive(r, "healthy", "pass", null, T + 21_000);
    expect(r.ejectedAt).toBe(0);
    expect(b.state(r, T + 21_000)).toBe("slow_start");
  });

  it("an ejection that ran out waits for a passing check when the last one failed", () => {
    const { b, a, r } = setup();
    b.setActive(a, "healthy", "pass", null, T - 100_000);
    b.setActive(r, "healthy", "pass", null, T - 100_000);
    for (let i = 0; i < 3; i++) b.failed(r, T + 0, "HTTP 500");
    b.setActive(r, "healthy", "fail", "timeout", T + 5_000);
    expect(b.state(r, T + 11_000)).toBe("ejected");
    b.setActive(r, "healthy", "pass", null, T + 12_000);
    expect(b.state(r, T + 12_000)).toBe("slow_start");
  });

  it("an open breaker ejects; half-open admits one request at a time; closing slow-starts", () => {
    const { b, a, r } = setup(() => 0, { check: false, circuit_breaker: { consecutive_failures: 2, open: 5 } });
    expect(b.state(a, 0)).toBe("healthy");
    b.failed(r, 0, "HTTP 500");
    b.failed(r, 1, "HTTP 500");
    expect(r.breaker!.state(1)).toBe("open");
    b.succeeded(r, 2); // a late success does not close an open breaker
    expect(b.state(r, 2)).toBe("ejected");
    expect(b.candidates(2, null)).toEqual([a]);
    expect(b.state(r, 5_001)).toBe("ejected");
    expect(b.candidates(5_001, null)).toEqual([a, r]);
    r.inFlight = 1;
    expect(b.candidates(5_001, null)).toEqual([a]);
    r.inFlight = 0;
    for (let t = 5_002; t < 5_005; t++) b.succeeded(r, t);
    expect(r.breaker!.state(5_005)).toBe("closed");
    expect(b.state(r, 5_005)).toBe("slow_start");
    expect(b.report(5_005)[1]).toEqual({
      replica: "b",
      state: "slow_start",
      circuit: "closed",
      last_check: null,
      error: null,
    });
  });

  it("when every replica is out, the least bad one alone", () => {
    const { b, a, r } = setup();
    b.setActive(a, "unhealthy", "fail", "x", 0);
    expect(b.candidates(1, null)).toEqual([r]); // pending its first check beats unhealthy
  });
});
