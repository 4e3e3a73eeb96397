import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import { DEFAULT_OBSERVABILITY } from "../../schema/observability.ts";
import {
  api,
  applyConfig,
  connectAgent,
  getGateway,
  localConfig,
  newProject,
  objectSql,
  plan,
  runningGateway,
  waitFor,
} from "./helpers.ts";

// `observability:` of a gateway: validated with the field named, carried in the configuration
// document, and changed in place (a new document version pushed to the agents, no re-create).

const TRACING = { tracing: { endpoint: "http://otel.internal:4318/v1/traces", sample_ratio: 0.25 } };

describe("observability of a gateway", () => {
  it("is in the document with its defaults, and a change is made in place with a new version", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-obs");
    const agent = await connectAgent(token!);
    const first = await waitFor("document", async () => agent.configs[0]);
    expect(first.observability).toEqual(DEFAULT_OBSERVABILITY);
    const before = (await getGateway(project, "gw-obs")).body;
    expect(before.configuration.observability).toEqual(DEFAULT_OBSERVABILITY);

    const configuration = localConfig("gw-obs", { observability: { ...TRACING, access_log: {} } });
    const planned = await plan(project, configuration);
    expect(planned.status).toBe(200);
    expect(planned.body).toMatchObject({ action: "update", in_place: true });
    expect(planned.body.changes.map((c: { field: string }) => c.field)).toEqual(["observability"]);
    const applied = await applyConfig(project, configuration);
    expect(applied.status).toBe(200);
    expect(applied.body.id).toBe(before.id);
    const expected = {
      metrics: { public: false },
      access_log: { destination: "stdout", max_size: 100 * 1024 ** 2, max_files: 5 },
      tracing: TRACING.tracing,
    };
    expect(applied.body.configuration.observability).toEqual(expected);

    const pushed = await waitFor("pushed", async () => agent.configs.find((d) => d.version > first.version));
    expect(pushed.observability).toEqual(expected);
    const pulled = await api("GET", "/api/v1/agent/config", undefined, token!);
    expect(pulled.body.observability).toEqual(expected);
    // Applying the same file again changes nothing.
    expect((await plan(project, configuration)).body.changes).toEqual([]);
    agent.ws.close(1000, "done");
  });

  it("refuses a bad value naming the field, and changes nothing", async () => {
    const project = await newProject();
    expect((await applyConfig(project, localConfig("gw-obs-bad"))).status).toBe(201);
    const bad = await plan(project, localConfig("gw-obs-bad", { observability: { tracing: { sample_ratio: 2 } } }));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_field", field: "observability.tracing.endpoint" });
    expect(bad.body.error.message).toContain("observability.tracing.endpoint: required field is missing");
    expect(bad.body.error.message).toContain("observability.tracing.sample_ratio: expected a number from 0 to 1");
    const g = (await getGateway(project, "gw-obs-bad")).body as Gateway;
    expect(g.configuration.observability).toEqual(DEFAULT_OBSERVABILITY);
  });

  it("reads a gateway stored before observability existed with the defaults: no change to plan", async () => {
    const project = await newProject();
    expect((await applyConfig(project, localConfig("gw-obs-old"))).status).toBe(201);
    // As an older control plane stored it.
    await objectSql(
      project,
      "gw-obs-old",
      "UPDATE gateway SET configuration = json_remove(configuration, '$.observability')",
    );
    const [row] = await objectSql<{ configuration: string }>(
      project,
      "gw-obs-old",
      "SELECT configuration FROM gateway",
    );
    expect(JSON.parse(row!.configuration).observability).toBeUndefined();
    expect((await getGateway(project, "gw-obs-old")).body.configuration.observability).toEqual(DEFAULT_OBSERVABILITY);
    expect((await plan(project, localConfig("gw-obs-old"))).body).toMatchObject({ changes: [], in_place: true });
  });
});
