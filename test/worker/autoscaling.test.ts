import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Service } from "../../schema/service-api.ts";
import {
  ageDecision,
  api,
  applyService,
  connectAgent,
  gatewayStub,
  newProject,
  objectSql,
  runningGateway,
  scalingEvents,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const svc = servicesPath;

const statsMessage = (service: string, requests: { "30"?: number; "60"?: number; "300"?: number }) => ({
  type: "stats",
  at: Date.now(),
  services: [
    {
      service,
      windows: {
        "30": { requests: requests["30"] ?? 0, request_time: 0.1 },
        "60": { requests: requests["60"] ?? 0, request_time: 0.1 },
        "300": { requests: requests["300"] ?? 0, request_time: 0.1 },
      },
    },
  ],
});

const getService = async (project: string, name: string) => (await api<Service>("GET", `${svc(project)}/${name}`)).body;

describe("autoscaling", () => {
  it("decides from the agents' stats, shows the decision and emits service.scaling", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-as");
    const created = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "1..4",
      scaling: { metric: "rps", target: 1, window: "30s", scale_up_delay: 0 },
    });
    expect(created.status).toBe(201);
    // Decided at once: nothing registered, the range starts at 1.
    expect(created.body.scaling).toMatchObject({ desired_replicas: 1, current_replicas: 0 });
    expect(created.body.scaling.reason).toMatch(/^0 registered, brought within 1\.\.4; no decision/);
    const agent = await connectAgent(token!);

    // Within 5 s of the last decision a report is stored but not evaluated.
    const evaluatedAt = created.body.scaling.last_evaluated_at;
    agent.send(statsMessage("chat", { "30": 90, "60": 5 }));
    await waitFor("stats stored", async () => (await getService(project, "chat")).stats);
    expect((await getService(project, "chat")).scaling).toMatchObject({
      desired_replicas: 1,
      last_evaluated_at: evaluatedAt,
    });

    // 90 requests over 30 s = 3 rps / target 1 → 3.
    await ageDecision(project, "gw-as");
    agent.send(statsMessage("chat", { "30": 90, "60": 5 }));
    const scaled = await waitFor("scale-up", async () => {
      const s = await getService(project, "chat");
      return s.scaling?.desired_replicas === 3 ? s : null;
    });
    expect(scaled.scaling).toMatchObject({
      desired_replicas: 3,
      current_replicas: 0,
      reason: "rps 3 over 30s / target 1 → 3",
    });
    expect(Date.parse(scaled.scaling!.last_change_at!)).toBeLessThanOrEqual(
      Date.parse(scaled.scaling!.last_evaluated_at!),
    );
    expect(scaled.stats?.windows["30"].requests).toBe(90);

    // Traffic stops: scale-down waits the default 10 minutes, and says so.
    await ageDecision(project, "gw-as");
    agent.send(statsMessage("chat", {}));
    const held = await waitFor("held scale-down", async () => {
      const s = await getService(project, "chat");
      return s.scaling?.reason?.includes("scale-down") ? s : null;
    });
    expect(held.scaling!.desired_replicas).toBe(3);
    expect(held.scaling!.reason).toMatch(
      /^rps 0 over 30s \/ target 1 → 1 \(clamped to 1\.\.4\); holding 3: scale-down delay 10m not elapsed \(last change \d+s ago\)$/,
    );
    // …and the object's alarm is set for when it may go through.
    const [row] = await objectSql<{ next_evaluation_at: number; last_change_at: number }>(
      project,
      "gw-as",
      "SELECT next_evaluation_at, last_change_at FROM service_scaling WHERE service = 'chat'",
    );
    expect(row!.next_evaluation_at).toBe(row!.last_change_at + 600_000);
    const stub = await gatewayStub(project, "gw-as");
    const alarm = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(row!.next_evaluation_at);

    const events = await waitFor("events in D1", async () => {
      const e = await scalingEvents(project);
      return e.length >= 2 ? e : null;
    });
    expect(events).toEqual([
      {
        service: "chat",
        desired_replicas: 1,
        previous_desired_replicas: null,
        current_replicas: 0,
        reason: expect.stringMatching(/^0 registered, brought within 1\.\.4/),
      },
      {
        service: "chat",
        desired_replicas: 3,
        previous_desired_replicas: 1,
        current_replicas: 0,
        reason: "rps 3 over 30s / target 1 → 3",
      },
    ]);
    // An alarm before then changes nothing.
    await runDurableObjectAlarm(stub);
    expect((await getService(project, "chat")).scaling!.desired_replicas).toBe(3);
    // Ten minutes later (moved back rather than waited for) the alarm lets the scale-down through.
    await objectSql(
      project,
      "gw-as",
      "UPDATE service_scaling SET last_change_at = last_change_at - 600000, next_evaluation_at = next_evaluation_at - 600000",
    );
    await runDurableObjectAlarm(stub);
    const down = await getService(project, "chat");
    expect(down.scaling).toMatchObject({
      desired_replicas: 1,
      reason: "rps 0 over 30s / target 1 → 1 (clamped to 1..4)",
    });
    const after = await waitFor("scale-down event", async () => {
      const e = await scalingEvents(project);
      return e.length === 3 ? e : null;
    });
    expect(after[2]).toMatchObject({ desired_replicas: 1, previous_desired_replicas: 3 });
    agent.ws.close(1000, "done");
  });

  it("does not hold the first scale-up after the service's creation (default delays)", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-as-first");
    const created = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "1..4",
      scaling: { metric: "rps", target: 1, window: "30s" },
    });
    expect(created.status).toBe(201);
    // Brought within 1..4 at creation: not a scaling change, so no delay is running.
    expect(created.body.scaling).toMatchObject({ desired_replicas: 1, last_change_at: null });
    const agent = await connectAgent(token!);
    await ageDecision(project, "gw-as-first");
    agent.send(statsMessage("chat", { "30": 90 }));
    const scaled = await waitFor("first scale-up", async () => {
      const s = (await getService(project, "chat")).scaling;
      return s && s.last_evaluated_at !== created.body.scaling.last_evaluated_at ? s : null;
    });
    expect(scaled).toMatchObject({ desired_replicas: 3, reason: "rps 3 over 30s / target 1 → 3" });
    expect(scaled.last_change_at).toBe(scaled.last_evaluated_at);
    agent.ws.close(1000, "done");
  });

  it("takes no decision while a running gateway replica has not reported", async () => {
    const project = await newProject();
    const [first, second] = await runningGateway(project, "gw-as2", 2);
    await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "1..4",
      scaling: { metric: "rps", target: 1, scale_up_delay: 0 },
    });
    const a = await connectAgent(first!);
    const b = await connectAgent(second!);
    const before = (await getService(project, "chat")).scaling!;
    await ageDecision(project, "gw-as2");
    a.send(statsMessage("chat", { "60": 600 }));
    const reason = await waitFor("evaluation with one report", async () => {
      const s = (await getService(project, "chat")).scaling;
      return s && s.last_evaluated_at !== before.last_evaluated_at ? s : null;
    });
    expect(reason).toMatchObject({ desired_replicas: 1, last_change_at: before.last_change_at });
    expect(reason.reason).toBe("no decision: not every running gateway replica reported stats (keeping 1)");
    expect((await getService(project, "chat")).stats).toBeNull();
    // Both report: 600 + 60 requests over 60 s = 11 rps → clamped to 4.
    b.send(statsMessage("chat", { "60": 60 }));
    await waitFor("both reported", async () => (await getService(project, "chat")).stats);
    await ageDecision(project, "gw-as2");
    a.send(statsMessage("chat", { "60": 600 }));
    const decided = await waitFor("decision with both reports", async () => {
      const s = await getService(project, "chat");
      return s.scaling?.desired_replicas === 4 ? s.scaling : null;
    });
    expect(decided.reason).toBe("rps 11 over 60s / target 1 → 4 (clamped to 1..4)");

    // A narrower range applies at once, delays or not.
    const narrowed = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "1..2",
      scaling: { metric: "rps", target: 1, scale_up_delay: 0 },
    });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scaling).toMatchObject({
      desired_replicas: 2,
      reason: "desired 4, brought within 1..2; rps 11 over 60s / target 1 → 2 (clamped to 1..2)",
    });
    a.ws.close(1000, "done");
    b.ws.close(1000, "done");
  });

  it("scales from zero at once when a proxy holds a request, once", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-zero");
    const bad = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "0..2",
      scaling: { metric: "rps", target: 1, hold_timeout: "2h" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("scaling.hold_timeout");
    const created = await applyService(project, {
      type: "service",
      name: "chat",
      https: false,
      replicas: "0..2",
      scaling: { metric: "rps", target: 1, hold_timeout: "90s" },
    });
    expect(created.status).toBe(201);
    expect(created.body.scaling).toMatchObject({ desired_replicas: 0, current_replicas: 0 });
    const agent = await connectAgent(token!);
    const doc = await waitFor("document", async () => agent.configs.find((d) => d.services.length === 1));
    expect(doc.services[0]!.hold).toEqual({ timeout_ms: 90_000 });

    agent.send({ type: "scale_from_zero", service: "chat" });
    const scaled = await waitFor("desired 1", async () => {
      const s = await getService(project, "chat");
      return s.scaling?.desired_replicas === 1 ? s.scaling : null;
    });
    expect(scaled.reason).toBe("request while scaled to zero");
    const events = await waitFor("event", async () => {
      const e = await scalingEvents(project);
      return e.length === 1 ? e : null;
    });
    expect(events[0]).toEqual({
      service: "chat",
      desired_replicas: 1,
      previous_desired_replicas: 0,
      current_replicas: 0,
      reason: "request while scaled to zero",
    });

    // Repeats (WebSocket or the HTTP fallback) change nothing.
    agent.send({ type: "scale_from_zero", service: "chat" });
    const again = await api("POST", "/api/v1/agent/scale-from-zero", { service: "chat" }, token!);
    expect(again).toEqual({ status: 200, body: { changed: false } });
    expect((await getService(project, "chat")).scaling!.last_change_at).toBe(scaled.last_change_at);
    expect(await scalingEvents(project)).toHaveLength(1);

    // The HTTP route checks its input and the agent's token.
    const missing = await api("POST", "/api/v1/agent/scale-from-zero", {}, token!);
    expect(missing.status).toBe(400);
    expect(missing.body.error.field).toBe("service");
    const unknown = await api("POST", "/api/v1/agent/scale-from-zero", { service: "nope" }, token!);
    expect(unknown.status).toBe(404);
    expect((await api("POST", "/api/v1/agent/scale-from-zero", { service: "chat" }, null)).status).toBe(401);

    // Services that do not scale to zero ignore the signal.
    await applyService(project, { type: "service", name: "fixed", https: false });
    const fixed = await api("POST", "/api/v1/agent/scale-from-zero", { service: "fixed" }, token!);
    expect(fixed.body).toEqual({ changed: false });
    expect((await getService(project, "fixed")).scaling).toBeNull();
    agent.ws.close(1000, "done");
  });
});
