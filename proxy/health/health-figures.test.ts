/**
 * Before/after figures for docs/health.md: two replicas behind round robin at 10 requests a second
 * on a fake clock; replica `b` answers 500 (its requests, and its `/health` unless `healthBlind`)
 * from t = 0 to t = 60 s, then recovers. "Before" is the balancer as it was (passive ejection only:
 * 3 failures, 10 s doubling to 120 s); "after" adds the host's active checks (5 s / 1 s / 2 s,
 * 3 failures / 2 passes), the circuit breaker and slow start (30 s). Printed with
 * `npx vitest run proxy/health/health-figures.test.ts`.
 */
import { describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../balancer.ts";
import { FakeClock } from "../engine/fake-clock.ts";
import { doc, service } from "../engine/fake-documents.ts";
import { HealthChecker } from "./checker.ts";
import { PASSIVE_HEALTH, serviceHealth } from "./service-health.ts";

const A = "http://10.0.0.1:8000";
const B = "http://10.0.0.2:8000";
const BROKEN_UNTIL = 60_000;

/** A deterministic uniform [0, 1) (LCG), so the slow start's draws repeat. */
function seeded(seed = 42): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

async function run(active: boolean, healthBlind = false) {
  const clock = new FakeClock();
  const t0 = clock.now() + 10_000; // checks settle for 10 s before the failure starts
  const health = healthDocument(null, true);
  const replicas = [new ReplicaState("llm", "a", A), new ReplicaState("llm", "b", B)];
  const balancer = new Balancer(
    replicas,
    DEFAULT_HEALTH_POLICY,
    () => {},
    undefined,
    active ? serviceHealth(health) : PASSIVE_HEALTH,
    seeded(),
  );
  const broken = () => clock.now() >= t0 && clock.now() < t0 + BROKEN_UNTIL;
  const checker = new HealthChecker({
    clock,
    random: seeded(7),
    onVerdict: (v) => {
      const r = replicas.find((x) => x.id === v.id)!;
      balancer.setActive(r, v.verdict, v.last, v.error, clock.now());
    },
    fetch: async (url) => (url.startsWith(B) && broken() && !healthBlind ? 500 : 200),
  });
  if (active)
    checker.retain(
      doc(
        service(
          "llm",
          [
            ["a", A],
            ["b", B],
          ],
          { health },
        ),
      ),
    );
  let failed = 0;
  let firstBackAt: number | null = null;
  let servedByBAfter = 0;
  let admittedAt: number | null = null;
  const tick = () => {
    const now = clock.now();
    if (now >= t0 + BROKEN_UNTIL && admittedAt === null) {
      const state = balancer.state(replicas[1]!, now);
      if (state === "healthy" || state === "slow_start") admittedAt = now - (t0 + BROKEN_UNTIL);
    }
    const r = balancer.pick(now, null)!;
    if (r.id === "b" && broken()) {
      if (now >= t0) failed++;
      balancer.failed(r, now, "HTTP 500");
    } else {
      balancer.succeeded(r, now);
      if (r.id === "b" && now >= t0 + BROKEN_UNTIL) {
        firstBackAt ??= now - (t0 + BROKEN_UNTIL);
        if (now < t0 + BROKEN_UNTIL + 30_000) servedByBAfter++;
      }
    }
    clock.setTimeout(tick, 100);
  };
  clock.setTimeout(tick, 0);
  await clock.advance(10_000 + BROKEN_UNTIL + 30_000);
  checker.close();
  return {
    failed,
    backAfterS: firstBackAt === null ? null : firstBackAt / 1000,
    admittedAfterS: admittedAt === null ? null : admittedAt / 1000,
    servedByBAfter,
  };
}

describe("replica health figures (10 req/s, 2 replicas, b broken for 60 s)", () => {
  it("a broken replica reaches clients fewer times and a recovered one is back sooner", async () => {
    const before = await run(false);
    const after = await run(true);
    const blindBefore = await run(false, true);
    const blindAfter = await run(true, true);
    const rows = [
      ["passive only (before)", before],
      ["active checks + breaker + slow start (after)", after],
      ["/health blind, passive only (before)", blindBefore],
      ["/health blind, after", blindAfter],
    ] as const;
    for (const [name, r] of rows)
      console.log(
        `${name}: ${r.failed} 500s reached clients in 60 s; admitted ${r.admittedAfterS}s and first served ${r.backAfterS}s after recovery; ${r.servedByBAfter} requests to b in the 30 s after`,
      );
    expect(after.failed).toBeLessThan(before.failed);
    expect(after.backAfterS!).toBeLessThan(before.backAfterS!);
    // Back in service (admitted, slow-starting) within the healthy threshold's checks: 2 passes 1 s
    // apart. Its first request then depends on the slow start's draws (10 % of its share at first).
    expect(after.admittedAfterS!).toBeLessThanOrEqual(3);
    // Blind checks cannot help; the breaker must not make it worse than the passive back-off.
    expect(blindAfter.failed).toBeLessThanOrEqual(blindBefore.failed);
  });
});
