import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import {
  ADMIN,
  api,
  applyConfig,
  daemonInstances,
  faults,
  gatewayStub,
  getGateway,
  localConfig,
  newProject,
  newUser,
  objectSql,
  plan,
  registerAgent,
  waitFor,
} from "./helpers.ts";

const gw = (project: string) => `/api/v1/projects/${project}/gateways`;

async function provisionedGateway(project: string, name: string, extra: Record<string, unknown> = {}) {
  const created = await applyConfig(project, localConfig(name, extra));
  expect(created.status).toBe(201);
  await waitFor("replica instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  return created.body;
}

async function runningGateway(project: string, name: string) {
  await provisionedGateway(project, name);
  const { res } = await registerAgent(project, name);
  expect(res.status).toBe(200);
  return waitFor("running", async () => {
    const g = (await getGateway(project, name)).body;
    return g.status === "running" ? g : null;
  });
}

describe("API basics", () => {
  it("serves health without auth and an OpenAPI 3.1 document from the schemas", async () => {
    expect((await api("GET", "/api/v1/health", undefined, null)).status).toBe(200);
    const doc = await api("GET", "/api/openapi.json", undefined, null);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(doc.body.paths["/api/v1/projects/{project}/gateways/apply"].post.requestBody).toBeTruthy();
    const config = doc.body.components.schemas.GatewayConfiguration;
    expect(JSON.stringify(config)).toContain("cache_aware");
  });

  it("answers unknown routes and bad JSON with JSON errors", async () => {
    const missing = await api("GET", "/api/v1/nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    const project = await newProject();
    const res = await SELF_fetchRaw(`${gw(project)}/plan`, "{not json");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
  });
});

async function SELF_fetchRaw(path: string, body: string) {
  const { SELF } = await import("cloudflare:test");
  const res = await SELF.fetch(`http://gateplane.test${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe("auth", () => {
  it("needs a valid bearer token on every route", async () => {
    const project = await newProject();
    expect((await api("GET", gw(project), undefined, null)).status).toBe(401);
    expect((await api("GET", gw(project), undefined, "gpt_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")).status).toBe(
      401,
    );
    expect((await api("GET", gw(project), undefined, `${ADMIN}x`)).status).toBe(401);
  });

  it("scopes tokens to projects and roles", async () => {
    const project = await newProject();
    const member = await newUser(project, "member");
    const admin = await newUser(project, "admin");
    const outsider = await newUser(null, null);
    expect((await api("GET", gw(project), undefined, member)).status).toBe(200);
    const denied = await plan(project, localConfig("gw-a"), member);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("forbidden");
    expect((await plan(project, localConfig("gw-a"), admin)).status).toBe(200);
    expect((await api("GET", gw(project), undefined, outsider)).status).toBe(403);
    expect((await api("GET", "/api/v1/projects/nope-nope/gateways", undefined, member)).status).toBe(404);
    expect((await api("POST", "/api/v1/projects", { name: "x-not-allowed" }, admin)).status).toBe(403);
  });

  it("revokes tokens and stores only their hashes", async () => {
    const project = await newProject();
    const token = await newUser(project, "member");
    const id = token.split("_")[1];
    const row = await env.DB.prepare("SELECT * FROM api_tokens WHERE id = ?").bind(id).first<Record<string, string>>();
    expect(JSON.stringify(row)).not.toContain(token.split("_")[2]);
    expect((await api("DELETE", `/api/v1/tokens/${id}`, undefined, token)).status).toBe(204);
    expect((await api("GET", gw(project), undefined, token)).status).toBe(401);
  });
});

describe("plan and apply", () => {
  it("rejects bad configurations with the field and changes nothing", async () => {
    const project = await newProject();
    const bad = await plan(project, localConfig("gw-bad", { router: { type: "sglang", policy: "fastest" } }));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_field", field: "router.policy" });
    expect(bad.body.error.message).toBe(
      'router.policy: expected one of cache_aware, power_of_two, random, round_robin, least_load, prefix_load, got "fastest"',
    );
    const aws = await plan(project, { type: "gateway", name: "gw-aws", backend: "aws", region: "eu-west-1" });
    expect(aws.status).toBe(400);
    expect(aws.body.error.field).toBe("backend");
    const applied = await api("POST", `${gw(project)}/apply`, {
      plan: { spec: { configuration: localConfig("gw-bad", { replicas: 0 }) } },
    });
    expect(applied.status).toBe(400);
    expect(applied.body.error.field).toBe("replicas");
    expect((await api("GET", gw(project))).body.gateways).toEqual([]);
  });

  it("plans a create with a generated name, then applies it as the project default", async () => {
    const project = await newProject();
    const p = await plan(project, { type: "gateway", backend: "local", domain: "localhost" });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ action: "create", in_place: false, current_resource: null, project_name: project });
    expect(p.body.effective_spec.configuration.name).toMatch(/^[a-z]+-[a-z]+-\d+$/);
    expect(p.body.effective_spec.configuration).toMatchObject({ region: "local", certificate: null, replicas: 1 });

    const g = await provisionedGateway(project, "gw-one");
    expect(g).toMatchObject({ name: "gw-one", default: true, backend: "local", wildcard_domain: "localhost" });
    const list = await api<{ gateways: Gateway[] }>("GET", gw(project));
    expect(list.body.gateways.map((x) => x.name)).toEqual(["gw-one"]);
    expect((await api("GET", `/api/v1/projects/${project}`)).body.default_gateway).toBe("gw-one");
    const events = await api("GET", `/api/v1/projects/${project}/events?gateway=gw-one`);
    const messages = events.body.events.map((e: { message: string }) => e.message);
    expect(messages).toContain("Gateway created. Status: SUBMITTED");
    expect(messages).toContain("Gateway set as project default");
  });

  it("updates domain, default and replicas in place and re-creates for anything else", async () => {
    const project = await newProject();
    await provisionedGateway(project, "gw-upd");
    const update = await plan(project, localConfig("gw-upd", { domain: "example.localhost" }));
    expect(update.body).toMatchObject({ action: "update", in_place: true });
    expect(update.body.changes).toEqual([{ field: "domain", from: "localhost", to: "example.localhost" }]);
    const applied = await api("POST", `${gw(project)}/apply`, {
      plan: {
        spec: { configuration: localConfig("gw-upd", { domain: "example.localhost" }) },
        current_resource: update.body.current_resource,
      },
    });
    expect(applied.status).toBe(200);
    expect(applied.body.wildcard_domain).toBe("example.localhost");

    const recreate = await plan(
      project,
      localConfig("gw-upd", { domain: "example.localhost", router: { type: "sglang" } }),
    );
    expect(recreate.body).toMatchObject({ action: "create", in_place: false });
    expect(recreate.body.changes.map((c: { field: string }) => c.field)).toEqual(["router"]);
    const refused = await api("POST", `${gw(project)}/apply`, {
      plan: {
        spec: { configuration: localConfig("gw-upd", { domain: "example.localhost", router: { type: "sglang" } }) },
        current_resource: recreate.body.current_resource,
      },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("not_updatable");
    expect((await getGateway(project, "gw-upd")).body.configuration.router).toBeNull();
  });

  it("refuses a plan applied after the gateway changed, unless forced", async () => {
    const project = await newProject();
    await provisionedGateway(project, "gw-occ");
    const stale = await plan(project, localConfig("gw-occ", { domain: "a.localhost" }));
    expect((await applyConfig(project, localConfig("gw-occ", { domain: "b.localhost" }))).status).toBe(200);
    const conflict = await api("POST", `${gw(project)}/apply`, {
      plan: {
        spec: { configuration: localConfig("gw-occ", { domain: "a.localhost" }) },
        current_resource: stale.body.current_resource,
      },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({
      code: "conflict",
      message: "Failed to apply plan. Resource has been changed. Try again or use force apply.",
    });
    expect((await getGateway(project, "gw-occ")).body.wildcard_domain).toBe("b.localhost");
    const forced = await api("POST", `${gw(project)}/apply`, {
      plan: {
        spec: { configuration: localConfig("gw-occ", { domain: "a.localhost" }) },
        current_resource: stale.body.current_resource,
      },
      force: true,
    });
    expect(forced.status).toBe(200);
    expect(forced.body.wildcard_domain).toBe("a.localhost");
  });
});

describe("default gateway rules", () => {
  it("makes only the first gateway default; default: true/false and set-default move it", async () => {
    const project = await newProject();
    await provisionedGateway(project, "gw-first");
    const second = await provisionedGateway(project, "gw-second");
    expect(second.default).toBe(false);
    expect((await getGateway(project, "gw-first")).body.default).toBe(true);

    const third = await provisionedGateway(project, "gw-third", { default: true });
    expect(third.default).toBe(true);
    expect((await getGateway(project, "gw-first")).body.default).toBe(false);

    const unset = await applyConfig(project, localConfig("gw-third", { default: false }));
    expect(unset.status).toBe(200);
    expect(unset.body.default).toBe(false);
    expect((await api("GET", `/api/v1/projects/${project}`)).body.default_gateway).toBeNull();

    const set = await api("POST", `${gw(project)}/gw-second/set-default`);
    expect(set.status).toBe(200);
    expect(set.body.default).toBe(true);
    const list = (await api<{ gateways: Gateway[] }>("GET", gw(project))).body.gateways;
    expect(list.filter((g) => g.default).map((g) => g.name)).toEqual(["gw-second"]);
    const events = (await api("GET", `/api/v1/projects/${project}/events`)).body.events.map(
      (e: { gateway_name: string; message: string }) => `${e.gateway_name}: ${e.message}`,
    );
    expect(events).toContain("gw-third: Gateway unset as project default");
    expect(events).toContain("gw-second: Gateway set as project default");
  });

  it("refuses to plan, apply or set default a gateway being deleted, and a new gateway then becomes default", async () => {
    const project = await newProject();
    await provisionedGateway(project, "gw-going");
    // Terminating its host fails for a while, so the gateway stays "being deleted" during the test.
    await faults({ fail_deletes: 100 });
    try {
      expect((await api("DELETE", `${gw(project)}/gw-going`)).status).toBe(202);
      for (const res of [
        await plan(project, localConfig("gw-going")),
        await applyConfig(project, localConfig("gw-going")),
        await api("POST", `${gw(project)}/gw-going/set-default`),
      ]) {
        expect(res.status).toBe(409);
        expect((res.body as any).error.code).toBe("being_deleted");
      }
      const next = await provisionedGateway(project, "gw-next");
      expect(next.default).toBe(true);
    } finally {
      await faults({ fail_deletes: 0 });
    }
  });
});

describe("reconciler on the local backend", () => {
  it("provisions a host, waits for its agent, and runs; the bootstrap secret is single use", async () => {
    const project = await newProject();
    await provisionedGateway(project, "gw-run");
    const g = (await getGateway(project, "gw-run")).body;
    expect(g.status).toBe("provisioning");
    expect(g.replicas[0]).toMatchObject({ replica_num: 0, status: "provisioning", backend: "local" });
    expect(g.replicas[0]!.hostname).toMatch(/^127\.0\.0\.1:\d+$/);
    const instances = await daemonInstances();
    expect(instances.filter((i) => i.instance_id === g.replicas[0]!.instance_id)).toHaveLength(1);

    const { secret, res } = await registerAgent(project, "gw-run");
    expect(res.status).toBe(200);
    const running = await waitFor("running", async () => {
      const x = (await getGateway(project, "gw-run")).body;
      return x.status === "running" ? x : null;
    });
    expect(running.replicas[0]!.agent?.version).toBe("test");
    const stub = await gatewayStub(project, "gw-run");
    const again = await api(
      "POST",
      "/api/v1/agent/register",
      { object_id: stub.id.toString(), gateway_id: g.id, replica_num: 0, bootstrap_secret: secret, version: "x" },
      null,
    );
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe("invalid_bootstrap");

    const token = res.body.token;
    const beat = await api("POST", "/api/v1/agent/heartbeat", { version: "1.2.3" }, token);
    expect(beat.status).toBe(204);
    const refreshed = await api("POST", "/api/v1/agent/token", undefined, token);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.token).not.toBe(token);
    expect((await api("POST", "/api/v1/agent/heartbeat", {}, `${token.slice(0, -4)}AAAA`)).status).toBe(401);
    expect((await api("GET", gw(project), undefined, token)).status).toBe(401);
    const jwks = await api("GET", "/.well-known/jwks.json", undefined, null);
    expect(jwks.body.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    expect(jwks.body.keys[0].d).toBeUndefined();
  });

  it("deletes asynchronously: terminates the host, removes the row, keeps the audit trail", async () => {
    const project = await newProject();
    const g = await runningGateway(project, "gw-del");
    const instanceId = g.replicas[0]!.instance_id;
    const marked = await api("DELETE", `${gw(project)}/gw-del`);
    expect(marked.status).toBe(202);
    expect(marked.body.to_be_deleted).toBe(true);
    await waitFor("gone", async () => (await getGateway(project, "gw-del")).status === 404);
    const host = (await daemonInstances()).find((i) => i.instance_id === instanceId);
    expect(host?.state).toBe("terminated");
    expect((await api("GET", gw(project))).body.gateways).toEqual([]);
    expect((await api("GET", `/api/v1/projects/${project}`)).body.default_gateway).toBeNull();
    const events = (await api("GET", `/api/v1/projects/${project}/events?gateway=gw-del`)).body.events.map(
      (e: { message: string }) => e.message,
    );
    expect(events).toEqual(expect.arrayContaining(["Gateway marked for deletion", "Gateway deleted"]));
    const missing = await api("POST", `${gw(project)}/delete`, { names: ["gw-del"] });
    expect(missing.status).toBe(404);
  });

  it("scales replicas out and in place, oldest first", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-scale");
    const out = await applyConfig(project, localConfig("gw-scale", { replicas: 3 }));
    expect(out.status).toBe(200);
    await waitFor("3 replicas with instances", async () => {
      const r = (await getGateway(project, "gw-scale")).body.replicas;
      return r.length === 3 && r.every((x) => x.instance_id);
    });
    await registerAgent(project, "gw-scale", 1);
    await registerAgent(project, "gw-scale", 2);
    await waitFor("running with 3", async () => (await getGateway(project, "gw-scale")).body.status === "running");
    const before = (await getGateway(project, "gw-scale")).body.replicas;
    const inn = await applyConfig(project, localConfig("gw-scale", { replicas: 1 }));
    expect(inn.status).toBe(200);
    const after = await waitFor("scaled in", async () => {
      const r = (await getGateway(project, "gw-scale")).body.replicas;
      return r.length === 1 ? r : null;
    });
    // Replica 0 is the oldest running one, so it goes first; the newest stays.
    expect(after[0]!.replica_num).toBe(2);
    const terminated = (await daemonInstances()).filter(
      (i) => i.state === "terminated" && before.some((b) => b.instance_id === i.instance_id),
    );
    expect(terminated).toHaveLength(2);
  });

  it("retries a failed create with back-off and never duplicates the host when a create's answer is lost", async () => {
    const project = await newProject();
    await faults({ fail_creates: 1 });
    const created = await applyConfig(project, localConfig("gw-retry"));
    expect(created.status).toBe(201);
    const waiting = await waitFor("first attempt failed", async () => {
      const g = (await getGateway(project, "gw-retry")).body;
      return g.replicas[0]?.status_message?.includes("retrying in 1 min") ? g : null;
    });
    expect(waiting.status).toBe("provisioning");
    expect(waiting.replicas[0]!.status_message).toContain("injected: host capacity exhausted");

    // The next attempt's answer is lost after the host was made; then the object restarts.
    await faults({ drop_creates: 1 });
    await objectSql(project, "gw-retry", "UPDATE replicas SET next_attempt_at = 0");
    const stub = await gatewayStub(project, "gw-retry");
    await runDurableObjectAlarm(stub);
    const [row] = await objectSql<{ attempt: number; instance_id: string | null; id: string }>(
      project,
      "gw-retry",
      "SELECT attempt, instance_id, id FROM replicas",
    );
    expect(row).toMatchObject({ attempt: 2, instance_id: null });
    await expect(
      runInDurableObject(stub, (_obj, state) => {
        state.abort("simulated restart");
      }),
    ).rejects.toThrow("simulated restart");

    // A stub is bound to the object instance it reached; the restarted object needs a new one.
    await objectSql(project, "gw-retry", "UPDATE replicas SET next_attempt_at = 0");
    await runDurableObjectAlarm(await gatewayStub(project, "gw-retry"));
    const g = await waitFor("instance recorded", async () => {
      const x = (await getGateway(project, "gw-retry")).body;
      return x.replicas[0]?.instance_id ? x : null;
    });
    const hosts = (await daemonInstances()).filter((i) => i.client_token === row!.id);
    expect(hosts).toHaveLength(1);
    expect(hosts[0]!.instance_id).toBe(g.replicas[0]!.instance_id);
  });

  it("fails the gateway when a replica cannot be provisioned, and deleting it still cleans up", async () => {
    const project = await newProject();
    const stub = await provisionedGateway(project, "gw-fail").then(() => gatewayStub(project, "gw-fail"));
    // Push the replica past the agent-registration deadline.
    await objectSql(project, "gw-fail", "UPDATE replicas SET provisioning_since = 1");
    await runDurableObjectAlarm(stub).catch(() => {});
    const failed = await waitFor("failed", async () => {
      const g = (await getGateway(project, "gw-fail")).body;
      return g.status === "failed" ? g : null;
    });
    expect(failed.status_message).toContain("Failed to provision gateway replica 0");
    const refused = await applyConfig(project, localConfig("gw-fail", { domain: "x.localhost" }));
    expect(refused.status).toBe(409);
    expect((refused.body as any).error.code).toBe("failed");
    expect((await api("DELETE", `${gw(project)}/gw-fail`)).status).toBe(202);
    await waitFor("gone", async () => (await getGateway(project, "gw-fail")).status === 404);
  });
});
