/**
 * Replica health through a real proxy (one process, real replicas, real time compressed 30×: a 333 ms
 * ejection stands for 10 s, a 167 ms / 33 ms check interval for 5 s / 1 s): replica `b` answers 500
 * to everything for 2 s (60 s), then recovers. Without `health` in the document (passive ejection
 * only) clients see the threshold's 500s plus the probes when each back-off runs out, and `b` waits
 * out its back-off after recovering; with active checks, only the threshold's, and `b` is back after
 * two passing checks. The deterministic figures are `health-figures.test.ts`'s.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { HealthDocument } from "../../schema/health.ts";
import { type Echo, echo, startReplica } from "../../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { startTunedProxy } from "../index.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HEALTH: HealthDocument = {
  check: {
    path: "/health",
    interval_ms: 167,
    unhealthy_interval_ms: 33,
    timeout_ms: 67,
    healthy_threshold: 2,
    unhealthy_threshold: 3,
  },
  wait_healthy: true,
  slow_start_ms: 0,
  circuit_breaker: null,
};

async function run(health: HealthDocument | null) {
  let broken = false;
  const a = await startReplica("a");
  const okB = echo("b");
  const b = await startReplica("b", (req, res) => {
    if (broken) res.writeHead(500).end("down");
    else okB(req, res);
  });
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const p = await startTunedProxy(
    {
      httpPort: 0,
      processes: 0,
      initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url, b.url], health }]),
    },
    { settings: { health: { maxFailures: 3, baseEjectionMs: 333, maxEjectionMs: 4_000 } } },
  );
  cleanups.push(() => p.close());
  const request = () => send(p.port, { host: `alpha.${DOMAIN}` });
  // Both replicas in service (with checks: after their first pass).
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) {
    const res = await request();
    if (res.status === 200) seen.add((JSON.parse(res.body) as Echo).replica);
    await new Promise((r) => setTimeout(r, 5));
  }
  broken = true;
  let failed = 0;
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    if ((await request()).status === 500) failed++;
    await new Promise((r) => setTimeout(r, 10));
  }
  broken = false;
  const recovered = Date.now();
  let backMs: number | null = null;
  while (Date.now() - recovered < 3_000) {
    const res = await request();
    if (res.status === 200 && (JSON.parse(res.body) as Echo).replica === "b") {
      backMs = Date.now() - recovered;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { failed, backMs };
}

describe("replica health through the proxy", () => {
  it("a 500-ing replica reaches clients fewer times, and a recovered one is back sooner", async () => {
    const before = await run(null);
    const after = await run(HEALTH);
    console.log(
      `passive only: ${before.failed} 500s to clients, back after ${before.backMs} ms; with checks: ${after.failed} 500s, back after ${after.backMs} ms`,
    );
    expect(after.failed).toBeLessThan(before.failed);
    expect(after.failed).toBeLessThanOrEqual(4);
    expect(after.backMs).not.toBeNull();
    expect(after.backMs!).toBeLessThan(before.backMs ?? 3_000);
  }, 20_000);
});
