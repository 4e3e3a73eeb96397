import { describe, expect, it } from "vitest";
import type { EngineSignals } from "../../schema/engine.ts";
import type { Service } from "../../schema/service-api.ts";
import { api, applyService, connectAgent, newProject, runningGateway, servicesPath, waitFor } from "./helpers.ts";

// Engine signals as the agents of two gateway replicas report them (each scrapes every service
// replica), sent through the real object: the service view shows per service replica the freshest
// read, its age counted to the response; stale and failed reads show as such, with their error.

const signal = (replica: string, fields: Partial<EngineSignals>): EngineSignals => ({
  replica,
  engine: "vllm",
  state: "fresh",
  running: null,
  waiting: null,
  kv_cache_usage: null,
  prefix_cache_hit_rate: null,
  age_seconds: null,
  error: null,
  ...fields,
});

const statsMessage = (engine: EngineSignals[]) => ({
  type: "stats",
  at: Date.now(),
  services: [
    {
      service: "llama",
      windows: {
        "30": { requests: 0, request_time: 0 },
        "60": { requests: 0, request_time: 0 },
        "300": { requests: 0, request_time: 0 },
      },
      engine,
    },
  ],
});

describe("engine signals of a service's replicas", () => {
  it("merges two gateway replicas' reads, the freshest winning, and shows stale and failed states", async () => {
    const project = await newProject();
    const tokens = await runningGateway(project, "gw-engine", 2);
    expect((await applyService(project, { type: "service", name: "llama", https: false })).status).toBe(201);
    for (const id of ["r1", "r2", "r3", "r4"]) {
      const put = await api("PUT", `${servicesPath(project)}/llama/replicas/${id}`, {
        url: `http://127.0.0.1:9/${id}`,
      });
      expect(put.status).toBeLessThan(300);
    }
    const get = async () => (await api<Service>("GET", `${servicesPath(project)}/llama`)).body;
    // Nothing reported yet: every replica's engine is null.
    expect((await get()).replicas.map((r) => r.engine)).toEqual([null, null, null, null]);

    const [a, b] = await Promise.all(tokens.map((t) => connectAgent(t)));
    const refused = "GET http://127.0.0.1:9/r2/metrics: connect ECONNREFUSED";
    a!.send(
      statsMessage([
        signal("r1", { running: 7, waiting: 2, kv_cache_usage: 0.5, prefix_cache_hit_rate: 0.25, age_seconds: 4 }),
        signal("r2", { engine: null, state: "failed", error: refused }),
        signal("r3", { state: "stale", running: 1, waiting: 0, age_seconds: 9, error: "timed out after 1 s" }),
      ]),
    );
    b!.send(
      statsMessage([
        signal("r1", { running: 3, waiting: 0, kv_cache_usage: 0.125, prefix_cache_hit_rate: 0.75, age_seconds: 0.5 }),
        signal("r2", { engine: null, state: "failed", error: refused }),
        signal("r3", { state: "stale", running: 4, waiting: 4, age_seconds: 30, error: "timed out after 1 s" }),
      ]),
    );
    // The two sockets' messages may arrive in either order: wait for what each alone would not show.
    const s = await waitFor("both reports", async () => {
      const got = await get();
      const running = (id: string) => got.replicas.find((r) => r.id === id)?.engine?.running;
      return running("r1") === 3 && running("r3") === 1 ? got : null;
    });
    const engine = (id: string) => s.replicas.find((r) => r.id === id)!.engine;

    // r1: replica 1 read it 0.5 s before its report, replica 0 4 s before: replica 1's figures.
    const r1 = engine("r1")!;
    expect(r1).toMatchObject({
      engine: "vllm",
      state: "fresh",
      running: 3,
      waiting: 0,
      kv_cache_usage: 0.125,
      prefix_cache_hit_rate: 0.75,
      error: null,
    });
    // The age runs on from the report's arrival; `replica` is the entry's own id.
    expect(r1.age_seconds).toBeGreaterThanOrEqual(0.5);
    expect(r1.age_seconds).toBeLessThan(4);
    expect(r1).not.toHaveProperty("replica");
    // r2: never read by either: failed, with the error, no figures.
    expect(engine("r2")).toEqual({
      engine: null,
      state: "failed",
      running: null,
      waiting: null,
      kv_cache_usage: null,
      prefix_cache_hit_rate: null,
      age_seconds: null,
      error: refused,
    });
    // r3: stale at both; replica 0's last good read (9 s) is the more recent one.
    expect(engine("r3")).toMatchObject({ state: "stale", running: 1, waiting: 0, error: "timed out after 1 s" });
    expect(engine("r3")!.age_seconds).toBeGreaterThanOrEqual(9);
    expect(engine("r3")!.age_seconds).toBeLessThan(30);
    // r4: no gateway replica reported it.
    expect(engine("r4")).toBeNull();

    for (const agent of [a!, b!]) agent.ws.close(1000, "done");
  });
});
