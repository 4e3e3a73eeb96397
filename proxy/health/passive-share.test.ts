/**
 * Two balancers standing for two proxy processes of one host, wired as the parent relays their
 * passive-health changes (`passive-share.ts`): failures count host-wide, an ejection or an opening
 * holds until the same end in both, one success readmits everywhere, and a healthy replica's
 * successes send nothing.
 */
import { describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../balancer.ts";
import type { PassiveEvent } from "./passive-share.ts";
import { PassiveMemory } from "./passive-share.ts";
import { serviceHealth } from "./service-health.ts";

const T = 1_000_000;

function host(breaker: boolean) {
  const sent: PassiveEvent[] = [];
  const make = (other: () => { b: Balancer; r: ReplicaState }) => {
    const r = new ReplicaState("s", "b", "http://b:1");
    const input = breaker
      ? { check: false as const, slow_start: 0, circuit_breaker: { consecutive_failures: 3, open: 10 } }
      : { check: false as const, circuit_breaker: false as const };
    const b = new Balancer(
      [r],
      { ...DEFAULT_HEALTH_POLICY, maxFailures: breaker ? 100 : 3 },
      () => {},
      undefined,
      serviceHealth(healthDocument(input, true)),
      () => 0.5,
      (e) => {
        sent.push(e);
        const o = other();
        if (e.kind === "failure") o.b.remoteFailed(o.r, e, e.at);
        else o.b.remoteSucceeded(o.r, e, e.at);
      },
    );
    return { b, r };
  };
  const p1: { b: Balancer; r: ReplicaState } = make(() => p2);
  const p2: { b: Balancer; r: ReplicaState } = make(() => p1);
  return { p1, p2, sent };
}

describe("passive health shared by a host's processes", () => {
  it("3 failures in all eject the replica in both processes until the same end; one success readmits it in both", () => {
    const { p1, p2, sent } = host(false);
    p1.b.failed(p1.r, T, "HTTP 500");
    p2.b.failed(p2.r, T + 1, "HTTP 500");
    expect(p1.b.state(p1.r, T + 2)).toBe("healthy");
    p1.b.failed(p1.r, T + 2, "HTTP 500");
    expect(p1.b.state(p1.r, T + 3)).toBe("ejected");
    expect(p2.b.state(p2.r, T + 3)).toBe("ejected");
    expect(p2.r.readmitAt).toBe(p1.r.readmitAt);
    expect(p1.r.readmitAt).toBe(T + 2 + 10_000);
    // The probe after the back-off fails in process 2: both back off again, doubled, to one end.
    p2.b.failed(p2.r, T + 10_002, "HTTP 500");
    expect(p1.r.readmitAt).toBe(T + 10_002 + 20_000);
    expect(p2.r.readmitAt).toBe(p1.r.readmitAt);
    // The next probe succeeds in process 1: both readmit, with the back-off forgotten.
    p1.b.succeeded(p1.r, T + 30_002);
    expect(p2.b.state(p2.r, T + 30_003)).toBe("healthy");
    expect([p2.r.failures, p2.r.ejections, p2.r.lastError]).toEqual([0, 0, null]);
    // A healthy replica's successes send nothing.
    const before = sent.length;
    for (let i = 0; i < 100; i++) p1.b.succeeded(p1.r, T + 30_004 + i);
    expect(sent.length).toBe(before);
  });

  it("a breaker's failures in a row are the host's; opened in one, open in both; closed in one, closed in both", () => {
    const { p1, p2 } = host(true);
    p1.b.failed(p1.r, T, "HTTP 500");
    p2.b.failed(p2.r, T + 1, "HTTP 500");
    p2.b.failed(p2.r, T + 2, "HTTP 500");
    expect(p1.r.breaker!.state(T + 3)).toBe("open");
    expect(p2.r.breaker!.state(T + 3)).toBe("open");
    expect(p1.r.breaker!.opensUntil).toBe(p2.r.breaker!.opensUntil);
    // Half-open in both at once; process 1's probes close it in both.
    const later = T + 2 + 10_000;
    expect(p2.r.breaker!.state(later)).toBe("half_open");
    for (let i = 0; i < 3; i++) p1.b.succeeded(p1.r, later + i);
    expect(p2.r.breaker!.state(later + 3)).toBe("closed");
    expect(p2.b.state(p2.r, later + 3)).toBe("healthy");
  });

  it("the parent remembers running ejections and openings for a child started later, until a success", () => {
    const memory = new PassiveMemory();
    const base = { service: "s", id: "b", url: "http://b:1", reason: "HTTP 500" };
    memory.note([
      { kind: "failure", ...base, at: T, ejection: null, opened: null },
      { kind: "failure", ...base, at: T, ejection: { at: T, until: T + 10_000, ejections: 1 }, opened: null },
    ]);
    expect(memory.current(T + 1, 60_000)).toHaveLength(1);
    expect(memory.current(T + 10_001, 60_000)).toHaveLength(0);
    memory.note([{ kind: "failure", ...base, at: T, ejection: null, opened: "3 failures in a row" }]);
    expect(memory.current(T + 1, 60_000)).toHaveLength(1);
    memory.note([{ kind: "success", service: "s", id: "b", url: "http://b:1", at: T + 2, closed: true }]);
    expect(memory.current(T + 3, 60_000)).toHaveLength(0);
  });
});
