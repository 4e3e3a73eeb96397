/**
 * Issue 17 on the control plane: incremental configuration. Agents that connect with `?deltas=1`
 * get a whole document, then a delta per change whose application reproduces the document the
 * object builds now; a gap is answered by a delta from the version the agent holds (or a whole
 * document when tombstones it needs were pruned); a NACKed delta is recorded; the object restarting
 * mid-stream loses nothing; older agents still get whole documents; the pull takes `?since`; the D1
 * catalog is written only for the services that changed; the limits refuse naming the field.
 */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChangeLog } from "../../durable-objects/change-log.ts";
import { GatewayState } from "../../durable-objects/state.ts";
import type { ServerMessage } from "../../schema/agent-protocol.ts";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import {
  api,
  applyConfig,
  applyService,
  connectAgent,
  gatewayStub,
  localConfig,
  newProject,
  objectSql,
  runningGateway,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const BASE = "http://gateplane.test";

type ConfigMessage = Extract<ServerMessage, { type: "config" | "config_delta" }>;

/** An agent that takes deltas: its configuration messages, in order, awaited one at a time. */
async function connectDeltaAgent(token: string) {
  const res = await SELF.fetch(`${BASE}/api/v1/agent/connect?deltas=1`, {
    headers: { upgrade: "websocket", authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const queue: ConfigMessage[] = [];
  const waiting: ((m: ConfigMessage) => void)[] = [];
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data as string) as ServerMessage;
    if (m.type !== "config" && m.type !== "config_delta") return;
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  ws.accept();
  const next = () =>
    new Promise<ConfigMessage>((resolve) => {
      const m = queue.shift();
      if (m) resolve(m);
      else waiting.push(resolve);
    });
  return { ws, next, pending: () => queue.length, send: (m: unknown) => ws.send(JSON.stringify(m)) };
}

/** What an agent does with a delta (the contract: only on top of exactly `base_version`). */
function applyDelta(doc: ConfigDocument, d: ConfigDelta): ConfigDocument {
  expect(d.base_version).toBe(doc.version);
  const changed = new Map(d.services.map((s) => [s.name, s]));
  const removed = new Set(d.removed);
  const services = [...doc.services.filter((s) => !changed.has(s.name) && !removed.has(s.name)), ...d.services].sort(
    (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return { ...doc, ...(d.head ?? {}), version: d.version, services };
}

/** The document's content, without the time it was built. */
const content = (doc: ConfigDocument) => ({ ...doc, generated_at: "" });

/** The whole document now, as an older agent pulls it. */
async function wholeDocument(token: string): Promise<ConfigDocument> {
  const res = await SELF.fetch(`${BASE}/api/v1/agent/config`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json();
}

async function pull(token: string, since: string) {
  const res = await SELF.fetch(`${BASE}/api/v1/agent/config?since=${since}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: res.status,
    etag: res.headers.get("etag"),
    body: res.status === 200 ? ((await res.json()) as any) : null,
  };
}

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "service",
  name,
  https: false,
  ...extra,
});

const putReplica = (project: string, name: string, id: string, port: number) =>
  api("PUT", `${servicesPath(project)}/${name}/replicas/${id}`, { url: `http://127.0.0.1:${port}` });

describe("deltas to an agent that takes them", () => {
  it("come in order, one per change, and applied to the connect's document give the document built now", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-d");
    const agent = await connectDeltaAgent(token!);
    const first = await agent.next();
    expect(first.type).toBe("config");
    let doc = (first as Extract<ConfigMessage, { type: "config" }>).document;

    const changes = [
      () => applyService(project, service("alpha")),
      () => putReplica(project, "alpha", "a1", 9001),
      () => applyService(project, service("beta", { read_timeout: 30 })),
      () => putReplica(project, "beta", "b1", 9002),
      () => putReplica(project, "alpha", "a2", 9003),
      () => applyService(project, service("alpha", { read_timeout: 45 })),
      () => api("DELETE", `${servicesPath(project)}/beta`),
      () => api("DELETE", `${servicesPath(project)}/alpha/replicas/a1`),
      () => api("POST", `/api/v1/projects/${project}/service-tokens`, { description: "t" }),
    ];
    for (const change of changes) {
      expect((await change()).status).toBeLessThan(300);
      const m = await agent.next();
      expect(m.type).toBe("config_delta");
      const delta = (m as Extract<ConfigMessage, { type: "config_delta" }>).delta;
      // One change: the delta names exactly one service (changed or removed), or only the head.
      expect(delta.services.length + delta.removed.length).toBeLessThanOrEqual(1);
      doc = applyDelta(doc, delta);
    }
    const removal = content(doc);
    expect(removal.services.map((s) => s.name)).toEqual(["alpha"]);
    expect(removal.service_tokens).toHaveLength(1);
    expect(removal).toEqual(content(await wholeDocument(token!)));
    expect(agent.pending()).toBe(0);
    agent.ws.close();
  });
});

describe("gateway changes", () => {
  it("observability is sent as the head alone; a domain change as a whole document", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-head");
    await applyService(project, service("svc"));
    const agent = await connectDeltaAgent(token!);
    let doc = ((await agent.next()) as Extract<ConfigMessage, { type: "config" }>).document;

    const tracing = { tracing: { endpoint: "http://otel.internal:4318/v1/traces", sample_ratio: 0.25 } };
    expect((await applyConfig(project, localConfig("gw-head", { observability: tracing }))).status).toBe(200);
    const head = (await agent.next()) as Extract<ConfigMessage, { type: "config_delta" }>;
    expect(head.type).toBe("config_delta");
    expect(head.delta.services).toEqual([]);
    expect(head.delta.head?.observability.tracing?.sample_ratio).toBe(0.25);
    doc = applyDelta(doc, head.delta);
    expect(content(doc)).toEqual(content(await wholeDocument(token!)));

    expect(
      (await applyConfig(project, localConfig("gw-head", { observability: tracing, domain: "other.localhost" })))
        .status,
    ).toBe(200);
    const whole = await agent.next();
    expect(whole.type).toBe("config");
    const moved = (whole as Extract<ConfigMessage, { type: "config" }>).document;
    expect(moved.services[0]!.host).toBe("svc.other.localhost");
    // An agent still at the version before the domain change cannot get a delta either.
    expect((await pull(token!, String(doc.version))).body.type).toBe("config");
    agent.ws.close();
  });
});

describe("a gap", () => {
  it("is answered by a delta from the version the agent holds, and a whole document once its tombstones were pruned", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-gap");
    await applyService(project, service("one"));
    await applyService(project, service("two"));
    const held = await wholeDocument(token!);
    await api("DELETE", `${servicesPath(project)}/one`);
    await putReplica(project, "two", "r1", 9010);
    await applyService(project, service("three"));

    // An agent that missed these (it restarted, holding `held`) connects: a whole document first.
    const agent = await connectDeltaAgent(token!);
    const connected = await agent.next();
    expect(connected.type).toBe("config");
    const now = (connected as Extract<ConfigMessage, { type: "config" }>).document;

    agent.send({ type: "resync", version: held.version });
    const answer = await agent.next();
    expect(answer.type).toBe("config_delta");
    const delta = (answer as Extract<ConfigMessage, { type: "config_delta" }>).delta;
    expect(delta.removed).toEqual(["one"]);
    expect(delta.services.map((s) => s.name)).toEqual(["three", "two"]);
    expect(content(applyDelta(held, delta))).toEqual(content(now));

    // Nothing known: the whole document.
    agent.send({ type: "resync", version: null });
    expect((await agent.next()).type).toBe("config");

    // The tombstones the agent needs are pruned: whole documents below the newest pruned one.
    const stub = await gatewayStub(project, "gw-gap");
    const floor = await runInDurableObject(stub, (_o, state) => {
      const pruned = new ChangeLog(state.storage.sql).pruneTombstones(0);
      if (pruned !== null) new GatewayState(state.storage.sql).setFullVersion(pruned);
      return pruned;
    });
    expect(floor).toBe(held.version + 1);
    agent.send({ type: "resync", version: held.version });
    expect((await agent.next()).type).toBe("config");
    agent.send({ type: "resync", version: floor });
    const after = await agent.next();
    expect(after.type).toBe("config_delta");
    expect((after as Extract<ConfigMessage, { type: "config_delta" }>).delta.removed).toEqual([]);

    // Pushes continue from the version last sent on this socket.
    await applyService(project, service("four"));
    const pushed = (await agent.next()) as Extract<ConfigMessage, { type: "config_delta" }>;
    expect(pushed.delta.base_version).toBe(now.version);
    expect(pushed.delta.services.map((s) => s.name)).toEqual(["four"]);
    agent.ws.close();
  });
});

describe("a NACKed delta", () => {
  it("is recorded as a NACKed document is", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-nack");
    const agent = await connectDeltaAgent(token!);
    await agent.next();
    await applyService(project, service("bad"));
    const m = (await agent.next()) as Extract<ConfigMessage, { type: "config_delta" }>;
    agent.send({ type: "nack", version: m.delta.version, error: "services[0]: refused" });
    const [row] = await waitFor("nack recorded", async () => {
      const rows = await objectSql<{ config_error: string | null; config_error_version: number | null }>(
        project,
        "gw-nack",
        "SELECT config_error, config_error_version FROM replicas WHERE config_error IS NOT NULL",
      );
      return rows.length > 0 ? rows : null;
    });
    expect(row).toEqual({ config_error: "services[0]: refused", config_error_version: m.delta.version });
    const svc = await api("GET", `${servicesPath(project)}/bad`);
    expect(svc.body.gateway_replicas[0].state).toBe("rejected");
    agent.ws.close();
  });
});

describe("the object restarting mid-stream", () => {
  it("keeps the versions: deltas continue from where the agent is", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-restart");
    await applyService(project, service("svc-a"));
    const held = await wholeDocument(token!);
    await putReplica(project, "svc-a", "r1", 9020);
    const stub = await gatewayStub(project, "gw-restart");
    await expect(
      runInDurableObject(stub, (_o, state) => {
        state.abort("simulated restart");
      }),
    ).rejects.toThrow("simulated restart");
    expect((await applyService(project, service("svc-b"))).status).toBe(201);
    expect((await api("DELETE", `${servicesPath(project)}/svc-a`)).status).toBe(200);

    const answer = await pull(token!, String(held.version));
    expect(answer.status).toBe(200);
    expect(answer.body.type).toBe("config_delta");
    const now = await wholeDocument(token!);
    expect(answer.etag).toBe(`"${now.version}"`);
    expect(content(applyDelta(held, answer.body.delta))).toEqual(content(now));
    expect(now.version).toBe(held.version + 3);
  });
});

describe("older agents and the pull", () => {
  it("an agent without ?deltas gets whole documents; the pull answers 304, a delta or a whole document", async () => {
    const project = await newProject();
    const [token] = await runningGateway(project, "gw-old");
    const old = await connectAgent(token!);
    await waitFor("connect document", async () => old.configs.length === 1);
    const applied = await applyService(project, service("svc-x"));
    expect(applied.status).toBe(201);
    await waitFor("whole document", async () => old.configs.length === 2);
    expect(old.configs[1]!.services.map((s) => s.name)).toEqual(["svc-x"]);
    old.ws.close();

    const now = await wholeDocument(token!);
    expect((await pull(token!, String(now.version))).status).toBe(304);
    const zero = await pull(token!, "0");
    expect(zero.body.type).toBe("config");
    expect(content(zero.body.document)).toEqual(content(now));
    const ahead = await pull(token!, String(now.version + 5));
    expect(ahead.body.type).toBe("config");
    const delta = await pull(token!, String(now.version - 1));
    expect(delta.body).toMatchObject({
      type: "config_delta",
      delta: { base_version: now.version - 1, version: now.version },
    });
    const bad = await pull(token!, "abc");
    expect(bad.status).toBe(400);
  });
});

describe("the catalog write-through", () => {
  it("writes only the services created or removed, and all of them end up right", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-cat");
    await applyService(project, service("keep"));
    await applyService(project, service("gone"));
    // A marker the old whole-gateway rewrite would have overwritten.
    await env.DB.prepare(
      "UPDATE services SET created_at = 'untouched' WHERE name = 'keep' AND project_id = (SELECT id FROM projects WHERE name = ?)",
    )
      .bind(project)
      .run();
    await putReplica(project, "keep", "r1", 9030);
    await applyService(project, service("new"));
    await api("DELETE", `${servicesPath(project)}/gone`);
    const rows = await waitFor("catalog", async () => {
      const r = await env.DB.prepare(
        "SELECT name, created_at FROM services WHERE project_id = (SELECT id FROM projects WHERE name = ?) ORDER BY name",
      )
        .bind(project)
        .all<{ name: string; created_at: string }>();
      return r.results.length === 2 && r.results.some((x) => x.name === "new") ? r.results : null;
    });
    expect(rows.map((r) => r.name)).toEqual(["keep", "new"]);
    expect(rows[0]!.created_at).toBe("untouched");
    expect(await objectSql(project, "gw-cat", "SELECT * FROM catalog_dirty")).toEqual([]);
  });
});

describe("an object from before incremental configuration", () => {
  it("measures its services and writes them all to the catalog once when it wakes", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-old-storage");
    await applyService(project, service("one"));
    await applyService(project, service("two"));
    await env.DB.prepare(
      "DELETE FROM services WHERE project_id = (SELECT id FROM projects WHERE name = ?) AND name = 'two'",
    )
      .bind(project)
      .run();
    // More services than one catalog batch takes (500), none of them in the catalog yet.
    await objectSql(
      project,
      "gw-old-storage",
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 600)
       INSERT INTO services (name, id, configuration, configuration_path, created_at, updated_at, config_version)
       SELECT 'seed-' || i, 'seed-' || i, json_set(configuration, '$.name', 'seed-' || i), NULL, created_at, updated_at, 1
       FROM n, (SELECT configuration, created_at, updated_at FROM services WHERE name = 'one')`,
    );
    // The storage as an older version left it: no sizes, no totals, no dirty marks.
    await objectSql(project, "gw-old-storage", "UPDATE services SET doc_bytes = NULL");
    await objectSql(project, "gw-old-storage", "DROP TABLE service_totals");
    await objectSql(project, "gw-old-storage", "DROP TABLE catalog_dirty");
    const stub = await gatewayStub(project, "gw-old-storage");
    await expect(
      runInDurableObject(stub, (_o, state) => {
        state.abort("upgrade");
      }),
    ).rejects.toThrow("upgrade");
    // A change wakes it; its write-through carries every service once.
    await applyService(project, service("three"));
    const totals = await objectSql<{ count: number; bytes: number }>(
      project,
      "gw-old-storage",
      "SELECT count, bytes FROM service_totals",
    );
    expect(totals[0]!.count).toBe(603);
    const sizes = await objectSql<{ doc_bytes: number }>(project, "gw-old-storage", "SELECT doc_bytes FROM services");
    expect(sizes.every((s) => s.doc_bytes > 100)).toBe(true);
    expect(totals[0]!.bytes).toBe(sizes.reduce((a, s) => a + s.doc_bytes, 0));
    // Written by the change's own flush, in batches: nothing is left for the alarm.
    const r = await env.DB.prepare(
      "SELECT name FROM services WHERE project_id = (SELECT id FROM projects WHERE name = ?) AND name NOT LIKE 'seed-%' ORDER BY name",
    )
      .bind(project)
      .all<{ name: string }>();
    expect(r.results.map((x) => x.name)).toEqual(["one", "three", "two"]);
    const seeded = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM services WHERE project_id = (SELECT id FROM projects WHERE name = ?) AND name LIKE 'seed-%'",
    )
      .bind(project)
      .first<{ n: number }>();
    expect(seeded!.n).toBe(600);
    expect(await objectSql(project, "gw-old-storage", "SELECT * FROM catalog_dirty")).toEqual([]);
  });
});

describe("limits", () => {
  it("refuse a service past the services per gateway, naming the field, and change nothing", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-lim");
    await applyService(project, service("s1"));
    await objectSql(project, "gw-lim", "UPDATE service_totals SET count = 25000");
    const [{ config_version: before }] = (await objectSql<{ config_version: number }>(
      project,
      "gw-lim",
      "SELECT config_version FROM gateway",
    )) as [{ config_version: number }];
    const res = await applyService(project, service("s2"));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "limit_exceeded", field: "gateway" });
    expect(res.body.error.message).toContain("25000");
    // An existing service still changes.
    expect((await applyService(project, service("s1", { read_timeout: 20 }))).status).toBe(200);
    const [{ config_version: after }] = (await objectSql<{ config_version: number }>(
      project,
      "gw-lim",
      "SELECT config_version FROM gateway",
    )) as [{ config_version: number }];
    expect(after).toBe(before + 1);
    expect((await api("GET", `${servicesPath(project)}/s2`)).status).toBe(404);
  });

  it("refuse a change past the document size, naming the field", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-size");
    await applyService(project, service("s1"));
    await objectSql(project, "gw-size", "UPDATE service_totals SET bytes = 24 * 1024 * 1024");
    const res = await applyService(project, service("s2"));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "limit_exceeded", field: "configuration" });
    const replica = await putReplica(project, "s1", "r1", 9040);
    expect(replica.status).toBe(400);
    expect(replica.body.error).toMatchObject({ code: "limit_exceeded", field: "url" });
    expect((await api("GET", `${servicesPath(project)}/s1`)).body.replicas).toEqual([]);
  });

  it("refuse a replica past the replicas per service, naming the field", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-reps");
    await applyService(project, service("s1"));
    const stub = await gatewayStub(project, "gw-reps");
    await runInDurableObject(stub, (_o, state) => {
      for (let i = 0; i < 1000; i++)
        state.storage.sql.exec(
          "INSERT INTO service_replicas (service, id, url, registered_at) VALUES ('s1', ?, 'http://127.0.0.1:1', '2026-01-01')",
          `r${i}`,
        );
    });
    const res = await putReplica(project, "s1", "extra", 9050);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "limit_exceeded", field: "id" });
    // Re-registering one already there is not a new replica.
    expect((await putReplica(project, "s1", "r1", 9051)).status).toBe(200);
  });
});
