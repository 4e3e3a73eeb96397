import { describe, expect, it } from "vitest";
import { TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import type { Service } from "../../schema/service-api.ts";
import {
  ageDecision,
  api,
  applyService,
  connectAgent,
  newProject,
  objectSql,
  runningGateway,
  scalingEvents,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const PD_ROUTER = { type: "sglang", pd_disaggregation: true };

/** `n` observations all in the bucket ending at `bound`. */
function histogram(bounds: readonly number[], bound: number, n: number) {
  const counts = new Array<number>(bounds.indexOf(bound as never) + 1).fill(0);
  counts[bounds.indexOf(bound as never)] = n;
  return { counts, sum: n * bound };
}

/**
 * 60 requests over the 30 s window of the PD path, measured end to end: TTFTs in (2.5 s, 5 s]
 * (p90 4.75 s, the prefill side's signal) and ITLs in (10 ms, 25 ms] (p90 23.5 ms, decode's).
 */
function pdStats(service: string) {
  const empty = { counts: [], sum: 0 };
  const llm = {
    duration: empty,
    ttft: histogram(TTFT_BOUNDS, 5, 60),
    tpot: empty,
    itl: histogram(TPOT_BOUNDS, 0.025, 6000),
    errors: 0,
    tokens: { input: 0, output: 0, estimated_output: 0 },
  };
  const window = { requests: 60, request_time: 5, llm };
  return {
    type: "stats",
    at: Date.now(),
    services: [{ service, windows: { "30": window, "60": window, "300": window } }],
  };
}

describe("per-role autoscaling of a PD service through the GatewayObject", () => {
  it("prefill scales up on TTFT while decode holds on ITL, with a decision, a view and events per role", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-pd-scale");
    const wrong = await applyService(project, {
      type: "service",
      name: "llama",
      https: false,
      router: PD_ROUTER,
      replicas: [
        { name: "prefill", count: "1..4", scaling: { metric: "itl", target: 0.05 } },
        { name: "decode", count: "1..4", scaling: { metric: "itl", target: 0.05 } },
      ],
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.field).toBe("replicas[0].scaling.metric");
    const created = await applyService(project, {
      type: "service",
      name: "llama",
      https: false,
      router: PD_ROUTER,
      replicas: [
        { name: "prefill", count: "1..4", scaling: { metric: "ttft", target: 1, window: "30s", scale_up_delay: 0 } },
        { name: "decode", count: "1..4", scaling: { metric: "itl", target: 0.05, window: "30s", scale_up_delay: 0 } },
      ],
    });
    expect(created.status).toBe(201);
    for (const [id, role, port] of [
      ["p1", "prefill", 30001],
      ["d1", "decode", 30002],
    ] as const) {
      const put = await api("PUT", `${servicesPath(project)}/llama/replicas/${id}`, {
        url: `http://127.0.0.1:${port}`,
        role,
        ...(role === "prefill" ? { bootstrap_port: 8998 } : {}),
      });
      expect(put.status).toBe(201);
    }
    const agent = await connectAgent(token!);
    await ageDecision(project, "gw-pd-scale");
    agent.send(pdStats("llama"));
    const scaled = await waitFor("prefill scale-up on ttft", async () => {
      const s = (await api<Service>("GET", `${servicesPath(project)}/llama`)).body;
      return s.scaling?.roles?.prefill.desired_replicas === 2 ? s.scaling : null;
    });
    const ttft = "ttft p90 4.75 s over 30s / target 1 s → 5, step limited to ×2 → 2";
    const itl = "itl p90 0.0235 s over 30s / target 0.05 s → 1";
    expect(scaled.roles!.prefill).toMatchObject({ desired_replicas: 2, current_replicas: 1, reason: ttft });
    expect(scaled.roles!.decode).toMatchObject({ desired_replicas: 1, current_replicas: 1, reason: itl });
    expect(scaled).toMatchObject({
      desired_replicas: 3,
      current_replicas: 2,
      reason: `prefill: ${ttft}; decode: ${itl}`,
    });

    // One standing decision per (service, role); the co-located table has none for it.
    const rows = await objectSql<{ role: string; desired_replicas: number; capacity: string | null }>(
      project,
      "gw-pd-scale",
      "SELECT role, desired_replicas, capacity FROM service_role_scaling WHERE service = 'llama' ORDER BY role",
    );
    expect(rows.map((r) => [r.role, r.desired_replicas])).toEqual([
      ["decode", 1],
      ["prefill", 2],
    ]);
    expect(JSON.parse(rows[1]!.capacity!)).toEqual({ for: "ttft 1", rps: 2 });
    expect(await objectSql(project, "gw-pd-scale", "SELECT * FROM service_scaling")).toEqual([]);

    // Creation brought both roles within their ranges (no replica registered yet), then prefill moved.
    expect(await scalingEvents(project)).toEqual([
      expect.objectContaining({ service: "llama", role: "prefill", desired_replicas: 1, current_replicas: 0 }),
      expect.objectContaining({ service: "llama", role: "decode", desired_replicas: 1, current_replicas: 0 }),
      {
        service: "llama",
        role: "prefill",
        desired_replicas: 2,
        previous_desired_replicas: 1,
        current_replicas: 1,
        reason: ttft,
      },
    ]);
    // The history's decision markers name the role.
    const metrics = await api<{ decisions: { role?: string; from: number | null; to: number }[] }>(
      "GET",
      `${servicesPath(project)}/llama/metrics`,
    );
    expect(metrics.body.decisions.at(-1)).toMatchObject({ role: "prefill", from: 1, to: 2 });
    agent.ws.close(1000, "done");
  });

  it("scales a PD service from zero with both roles at once, and holds requests meanwhile", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-pd-zero");
    const created = await applyService(project, {
      type: "service",
      name: "llama",
      https: false,
      router: PD_ROUTER,
      replicas: [
        { name: "prefill", count: "0..2", scaling: { metric: "ttft", target: 1, hold_timeout: "90s" } },
        { name: "decode", count: "0..3", scaling: { metric: "itl", target: 0.05 } },
      ],
    });
    expect(created.status).toBe(201);
    expect(created.body.scaling.roles).toMatchObject({
      prefill: { desired_replicas: 0 },
      decode: { desired_replicas: 0 },
    });
    const agent = await connectAgent(token!);
    const doc = await waitFor("document", async () => agent.configs.find((d) => d.services.length === 1));
    expect(doc.services[0]!.hold).toEqual({ timeout_ms: 90_000 });

    agent.send({ type: "scale_from_zero", service: "llama" });
    const scaled = await waitFor("both roles at 1", async () => {
      const s = (await api<Service>("GET", `${servicesPath(project)}/llama`)).body.scaling;
      return s?.desired_replicas === 2 ? s : null;
    });
    expect(scaled.roles!.prefill).toMatchObject({ desired_replicas: 1, reason: "request while scaled to zero" });
    expect(scaled.roles!.decode).toMatchObject({ desired_replicas: 1, reason: "request while scaled to zero" });
    expect(await scalingEvents(project)).toEqual(
      (["prefill", "decode"] as const).map((role) => ({
        service: "llama",
        role,
        desired_replicas: 1,
        previous_desired_replicas: 0,
        current_replicas: 0,
        reason: "request while scaled to zero",
      })),
    );
    // Repeats change nothing.
    const again = await api("POST", "/api/v1/agent/scale-from-zero", { service: "llama" }, token!);
    expect(again).toEqual({ status: 200, body: { changed: false } });
    expect(await scalingEvents(project)).toHaveLength(2);
    agent.ws.close(1000, "done");
  });
});
