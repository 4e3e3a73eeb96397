import { describe, expect, it } from "vitest";
import type { Service } from "../../schema/service-api.ts";
import {
  api,
  applyService,
  connectAgent,
  newProject,
  objectSql,
  runningGateway,
  servicesPath,
  waitFor,
} from "./helpers.ts";

// `usage:` of a service: carried per service in the configuration document, changed in place, and
// read as its default from a service stored before the field existed.

describe("usage of a service", () => {
  it("reaches the agents in the document, and a change is a new version in place", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-usage");
    const agent = await connectAgent(token!);
    const created = await applyService(project, { type: "service", name: "llama", https: false });
    expect(created.status).toBe(201);
    expect((created.body as Service).configuration.usage).toBe("as_requested");
    const first = await waitFor("document", async () => agent.configs.find((d) => d.services.length > 0));
    expect(first.services[0]!.usage).toBe("as_requested");

    const changed = await applyService(project, { type: "service", name: "llama", https: false, usage: "include" });
    expect(changed.status).toBe(200);
    expect((changed.body as Service).id).toBe((created.body as Service).id);
    const next = await waitFor("new version", async () => agent.configs.find((d) => d.version > first.version));
    expect(next.services[0]!.usage).toBe("include");
    agent.ws.close(1000, "done");
  });

  it("refuses another value naming the field", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-usage-bad");
    const bad = await applyService(project, { type: "service", name: "llama", https: false, usage: "always" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: "invalid_field",
      field: "usage",
      message: 'usage: expected one of include, as_requested, got "always"',
    });
  });

  it("reads a service stored before usage existed as as_requested: its unchanged file changes nothing", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-usage-old");
    const configuration = { type: "service", name: "llama", https: false };
    expect((await applyService(project, configuration)).status).toBe(201);
    await objectSql(
      project,
      "gw-usage-old",
      "UPDATE services SET configuration = json_remove(configuration, '$.usage')",
    );
    const shown = (await api<Service>("GET", `${servicesPath(project)}/llama`)).body;
    expect(shown.configuration.usage).toBe("as_requested");
    const plan = await api("POST", `${servicesPath(project)}/plan`, { spec: { configuration } });
    expect(plan.body).toMatchObject({ action: "update", changes: [] });
    const again = await applyService(project, configuration);
    expect(again.status).toBe(200);
    expect((again.body as Service).config_version).toBe(shown.config_version);
  });
});
