/**
 * Passive health with two proxy processes (real sockets, `node:cluster` sharing so connections
 * alternate between the processes): a replica answering 500 reaches clients at most 3 times in
 * total, not 3 per process, since each process's failures count toward the host's ejection
 * (`health/passive-share.ts`); the same for a circuit breaker opening, and a breaker closed in one
 * process is closed in both.
 */
import { afterEach, describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { type Echo, echo, startReplica } from "../../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import type { HealthPolicy } from "../balancer.ts";
import { startTunedProxy } from "../index.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The failures' times, in ms after the first, for the log. */
const offsets = (failures: number[]) => failures.map((at) => at - failures[0]!).join(", ");

/**
 * The failures before the replica could be let through again: those up to `windowMs` after the
 * third (the ejection's or open breaker's length). A burst that a loaded machine stretched past it
 * rightly sends b a request again (a readmission, a half-open probe), which is not what is counted.
 */
const beforeReadmission = (failures: number[], windowMs: number) =>
  failures.length < 3 ? failures : failures.filter((at) => at < failures[2]! + windowMs);

async function setUp(health: ReturnType<typeof healthDocument> | null, passive: HealthPolicy) {
  const state = { broken: false, toB: 0 };
  const a = await startReplica("a");
  const okB = echo("b");
  const b = await startReplica("b", (req, res) => {
    state.toB++;
    if (state.broken) res.writeHead(500).end("down");
    else okB(req, res);
  });
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const log: string[] = [];
  const p = await startTunedProxy(
    {
      httpPort: 0,
      processes: 2,
      initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url, b.url], health }]),
      log: (line) => log.push(line),
    },
    { sharing: "cluster", settings: { health: passive } },
  );
  cleanups.push(() => p.close());
  const request = () => send(p.port, { host: `alpha.${DOMAIN}` });
  // Both processes send to b (connections alternate between them, each round-robins a and b).
  let seenB = 0;
  for (let i = 0; i < 200 && seenB < 4; i++) {
    const res = await request();
    if (res.status === 200 && (JSON.parse(res.body) as Echo).replica === "b") seenB++;
  }
  expect(seenB).toBe(4);
  /**
   * Both processes have heard of every failure so far: a process's failures reach the other through
   * the parent (docs/health.md: a request the other dispatches within that round trip can still
   * reach the replica; that window is not what these tests count, and a loaded machine stretches it
   * past any pause). Two stats rounds in a row: the first one's answer from the process that
   * answered the client comes after its failure's message on the same channel, which the parent
   * relayed at once; the second's request to the other process comes after that relay.
   */
  const relayed = async () => {
    await p.stats();
    await p.stats();
  };
  /**
   * Sends `n` requests one after another, 10 ms apart, and after a failure once both processes have
   * heard of it; returns when each 500 reached the client.
   */
  const burst = async (n: number) => {
    const failures: number[] = [];
    for (let i = 0; i < n; i++) {
      if ((await request()).status === 500) {
        failures.push(Date.now());
        await relayed();
      } else {
        await pause(10);
      }
    }
    return failures;
  };
  const bHealth = async () => (await p.stats())[0]?.health?.find((h) => h.replica === "alpha-1");
  /** Waits until b answers again (its ejection or open circuit ran out). */
  const bServesAgain = () =>
    until(
      "b serves again",
      async () => {
        const res = await request();
        return res.status === 200 && (JSON.parse(res.body) as Echo).replica === "b";
      },
      10_000,
    );
  return { state, p, request, burst, bHealth, bServesAgain, log };
}

describe("passive health shared by a host's proxy processes", () => {
  it("a 500-ing replica reaches clients at most 3 times in all; both processes readmit it", async () => {
    const { state, burst, bHealth, bServesAgain, log } = await setUp(null, {
      maxFailures: 3,
      // An ejection that runs out mid-burst lets b fail again: not counted (beforeReadmission).
      baseEjectionMs: 4_000,
      maxEjectionMs: 8_000,
    });
    state.broken = true;
    state.toB = 0;
    const failures = await burst(40);
    console.log(
      `passive ejection, 2 processes: ${failures.length} 500s to clients in 40 requests (b got ${state.toB}; at ${offsets(failures)} ms)`,
    );
    expect(beforeReadmission(failures, 4_000).length).toBeLessThanOrEqual(3);
    expect(log.some((l) => l.includes("by another proxy process"))).toBe(true);
    expect((await bHealth())?.state).toBe("ejected");
    // Recovered: once the ejection (the same end in both processes) ran out, b serves again, and
    // the first success clears the failures in both (the report is the worst over the processes).
    state.broken = false;
    await bServesAgain();
    await until("b healthy in both processes", async () => (await bHealth())?.state === "healthy", 2_000);
    expect((await bHealth())?.error).toBeNull();
  }, 30_000);

  it("a circuit breaker opened in one process is open in both, and closed in both by one's probes", async () => {
    const health = healthDocument(
      // A half-open probe mid-burst fails once more: not counted (beforeReadmission).
      { check: false, slow_start: 0, circuit_breaker: { consecutive_failures: 3, open: 4, half_open_successes: 1 } },
      true,
    );
    const { state, burst, bHealth, bServesAgain } = await setUp(health, {
      maxFailures: 1_000,
      baseEjectionMs: 1_000,
      maxEjectionMs: 1_000,
    });
    state.broken = true;
    const failures = await burst(40);
    console.log(
      `circuit breaker, 2 processes: ${failures.length} 500s to clients in 40 requests (at ${offsets(failures)} ms)`,
    );
    expect(beforeReadmission(failures, 4_000).length).toBeLessThanOrEqual(3);
    expect((await bHealth())?.circuit).toBe("open");
    state.broken = false;
    await bServesAgain();
    // One process's half-open probe closed it; the other closes too, without a probe of its own.
    await until("the breaker closed in both processes", async () => (await bHealth())?.circuit === "closed", 500);
    expect((await bHealth())?.state).toBe("healthy");
  }, 30_000);
});
