/**
 * Active checks with child processes: the parent checks, the children's balancers follow its
 * verdicts (`{type: "health"}` messages), and the report carries each replica's state.
 */
import { afterEach, describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { type Echo, echo, startReplica } from "../../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../../test/support/config-builder.ts";
import { send } from "../../test/support/http-client.ts";
import { until } from "../../test/support/until.ts";
import { startTunedProxy } from "../index.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("replica health with child processes", () => {
  it("a replica whose /health fails takes no traffic until it passes; the report shows its state", async () => {
    let healthy = false;
    const a = await startReplica("a");
    const okB = echo("b");
    const b = await startReplica("b", (req, res) => {
      if (req.url === "/health" && !healthy) res.writeHead(503).end();
      else okB(req, res);
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const health = healthDocument({ check: { interval: 0.2 }, slow_start: 0 }, true);
    const p = await startTunedProxy(
      {
        httpPort: 0,
        processes: 1,
        initialConfig: configDocument(1, [{ name: "alpha", replicas: [a.url, b.url], health }]),
      },
      {},
    );
    cleanups.push(() => p.close());
    const replicaOf = async () => (JSON.parse((await send(p.port, { host: `alpha.${DOMAIN}` })).body) as Echo).replica;
    await until("b unhealthy in the report", async () =>
      (await p.stats())[0]?.health?.some((h) => h.replica === "alpha-1" && h.state === "unhealthy"),
    );
    const served = new Set<string>();
    for (let i = 0; i < 10; i++) served.add(await replicaOf());
    expect([...served]).toEqual(["a"]);
    healthy = true;
    await until("b serves", async () => (await replicaOf()) === "b");
    const report = (await p.stats())[0]!.health!;
    expect(report.find((h) => h.replica === "alpha-1")).toMatchObject({ state: "healthy", last_check: "pass" });
  }, 20_000);
});
