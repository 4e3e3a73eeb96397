/**
 * Issue 17's measurement on the control plane, small: apply + one replica registration on a gateway
 * holding a few hundred services, then a few thousand (seeded as rows of the object's storage, not
 * through the API, to keep the test cheap), with an agent taking deltas connected. A change costs
 * O(change): the latency must not grow with the services. Prints the figures.
 */

import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, applyService, newProject, objectSql, runningGateway, servicesPath } from "./helpers.ts";

async function seed(project: string, gateway: string, from: number, to: number): Promise<void> {
  const [template] = await objectSql<{ configuration: string }>(
    project,
    gateway,
    "SELECT configuration FROM services LIMIT 1",
  );
  await objectSql(
    project,
    gateway,
    `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
     INSERT INTO services (name, id, configuration, configuration_path, created_at, updated_at, config_version, doc_bytes)
     SELECT 'seed-' || i, 'seed-' || i, json_set(?, '$.name', 'seed-' || i), NULL, '2026-01-01', '2026-01-01', 1, 600 FROM n`,
    from,
    to,
    template!.configuration,
  );
  await objectSql(
    project,
    gateway,
    "INSERT OR REPLACE INTO service_totals (singleton, count, bytes) SELECT 1, COUNT(*), SUM(COALESCE(doc_bytes, 0)) FROM services",
  );
}

const p = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

async function measure(project: string, prefix: string, samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const name = `${prefix}-${i}`;
    const t0 = performance.now();
    expect((await applyService(project, { type: "service", name, https: false })).status).toBe(201);
    const put = await api("PUT", `${servicesPath(project)}/${name}/replicas/r1`, { url: "http://127.0.0.1:9000" });
    expect(put.status).toBe(201);
    out.push(performance.now() - t0);
  }
  return out;
}

describe("apply + registration at scale", () => {
  it("takes about as long with thousands of services as with hundreds", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-scale");
    const res = await SELF.fetch("http://gateplane.test/api/v1/agent/connect?deltas=1", {
      headers: { upgrade: "websocket", authorization: `Bearer ${token}` },
    });
    const ws = res.webSocket!;
    ws.accept();
    await applyService(project, { type: "service", name: "template", https: false });
    await seed(project, "gw-scale", 0, 300);
    const small = await measure(project, "small", 15);
    await seed(project, "gw-scale", 300, 5000);
    const large = await measure(project, "large", 15);
    ws.close();
    const fmt = (xs: number[]) => `p50 ${p(xs, 0.5).toFixed(1)} ms, p95 ${p(xs, 0.95).toFixed(1)} ms`;
    console.log(`apply + registration: ~300 services ${fmt(small)}; ~5000 services ${fmt(large)}`);
    // Generous: a shared machine is noisy; the old path grew with every service (whole document per change).
    expect(p(large, 0.5)).toBeLessThan(p(small, 0.5) * 3 + 50);
  });
});
