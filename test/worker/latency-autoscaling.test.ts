import { describe, expect, it } from "vitest";
import { TTFT_BOUNDS } from "../../schema/llm-stats.ts";
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

/** 60 requests in the 30 s window, their TTFTs all between 2.5 s and 5 s: p90 = 2.5 + 0.9 × 2.5 = 4.75 s. */
function slowStats(service: string) {
  const counts = new Array<number>(TTFT_BOUNDS.indexOf(5) + 1).fill(0);
  counts[TTFT_BOUNDS.indexOf(5)] = 60;
  const empty = { counts: [], sum: 0 };
  const llm = {
    duration: empty,
    ttft: { counts, sum: 60 * 4 },
    tpot: empty,
    itl: empty,
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

describe("autoscaling on latency (metric: ttft) through the GatewayObject", () => {
  it("scales on the merged TTFT p90, remembers the capacity, and emits service.scaling unchanged in shape", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-lat");
    const created = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "1..4",
      scaling: { metric: "ttft", target: 1, window: "30s", scale_up_delay: 0 },
    });
    expect(created.status).toBe(201);
    expect(created.body.configuration.scaling).toMatchObject({ metric: "ttft", target: 1, window: 30 });
    const agent = await connectAgent(token!);
    await ageDecision(project, "gw-lat");
    agent.send(slowStats("chat"));
    const scaled = await waitFor("scale-up on ttft", async () => {
      const s = (await api<Service>("GET", `${servicesPath(project)}/chat`)).body;
      return s.scaling?.desired_replicas === 2 ? s : null;
    });
    expect(scaled.scaling!.reason).toBe("ttft p90 4.75 s over 30s / target 1 s → 5, step limited to ×2 → 2");
    expect(scaled.traffic?.windows["30"].ttft.p90).toBe(4.75);

    // 60 requests / 30 s on 1 replica was over target: 2 rps per replica is remembered, for this target.
    const [row] = await objectSql<{ capacity: string }>(
      project,
      "gw-lat",
      "SELECT capacity FROM service_scaling WHERE service = 'chat'",
    );
    expect(JSON.parse(row!.capacity)).toEqual({ for: "ttft 1", rps: 2 });

    expect(await scalingEvents(project)).toContainEqual({
      service: "chat",
      desired_replicas: 2,
      previous_desired_replicas: 1,
      current_replicas: 0,
      reason: "ttft p90 4.75 s over 30s / target 1 s → 5, step limited to ×2 → 2",
    });
  });
});
