import { env, SELF } from "cloudflare:test";
import { importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../../schema/agent-protocol.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import type { Service } from "../../schema/service-api.ts";
import {
  api,
  applyConfig,
  applyService,
  gatewayStub,
  getGateway,
  localConfig,
  newProject,
  registerAgent,
  servicesPath,
  waitFor,
} from "./helpers.ts";

const svc = servicesPath;

async function runningGateway(project: string, name: string, extra: Record<string, unknown> = {}) {
  expect((await applyConfig(project, localConfig(name, extra))).status).toBe(201);
  await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  const { res } = await registerAgent(project, name);
  expect(res.status).toBe(200);
  await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
  return res.body.token as string;
}

const echo = (extra: Record<string, unknown> = {}) => ({ type: "service", name: "echo", https: false, ...extra });

async function connect(token: string): Promise<{ ws: WebSocket; next: () => Promise<ServerMessage> }> {
  const res = await SELF.fetch("http://gateplane.test/api/v1/agent/connect", {
    headers: { upgrade: "websocket", authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const queue: ServerMessage[] = [];
  const waiters: ((m: ServerMessage) => void)[] = [];
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(e.data as string) as ServerMessage;
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  ws.accept();
  const next = () =>
    new Promise<ServerMessage>((resolve, reject) => {
      const queued = queue.shift();
      if (queued) return resolve(queued);
      const timer = setTimeout(() => reject(new Error("no message within 5 s")), 5000);
      waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  return { ws, next };
}

async function nextConfig(next: () => Promise<ServerMessage>): Promise<ConfigDocument> {
  for (;;) {
    const m = await next();
    if (m.type === "config") return m.document;
  }
}

describe("services on a gateway", () => {
  it("needs a gateway: the named one or the project default", async () => {
    const project = await newProject();
    const none = await applyService(project, echo());
    expect(none.status).toBe(404);
    expect(none.body.error.message).toBe(
      "The service requires a gateway, but there is no default gateway in the project",
    );
    const missing = await applyService(project, echo({ gateway: "nope-gw" }));
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain("Gateway nope-gw does not exist");
  });

  it("validates the service and the gateway's HTTPS rules with the field named", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-svc-val");
    const https = await applyService(project, echo({ https: true }));
    expect(https.status).toBe(400);
    expect(https.body.error.field).toBe("https");
    const reserved = await applyService(project, echo({ name: "gateway" }));
    expect(reserved.status).toBe(400);
    expect(reserved.body.error.field).toBe("name");
    const size = await applyService(project, echo({ client_max_body_size: "lots" }));
    expect(size.body.error.field).toBe("client_max_body_size");
    const replica = await api("PUT", `${svc(project)}/nope/replicas/r1`, { url: "http://127.0.0.1:1" });
    expect(replica.status).toBe(404);
    expect((await api("GET", svc(project))).body.services).toEqual([]);
  });

  it("creates a service on the default gateway, registers replicas, and versions the agents' document", async () => {
    const project = await newProject();
    const token = await runningGateway(project, "gw-svc");
    const created = await applyService(project, echo({ read_timeout: "10m", client_max_body_size: "1MB" }));
    expect(created.status).toBe(201);
    const service = created.body as Service;
    expect(service).toMatchObject({ name: "echo", gateway: "gw-svc", replicas: [] });
    // *.localhost resolves in curl only: the bare address works for every client (proxy/route-request.ts).
    expect(service.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/proxy/services/${project}/echo/$`));
    expect(service.configuration).toMatchObject({
      https: false,
      auth: true,
      read_timeout: 600,
      client_max_body_size: 1048576,
    });

    const added = await api<Service>("PUT", `${svc(project)}/echo/replicas/r1`, { url: "http://127.0.0.1:9001/base" });
    expect(added.status).toBe(201);
    expect(added.body.config_version).toBeGreaterThan(service.config_version);
    const same = await api<Service>("PUT", `${svc(project)}/echo/replicas/r1`, { url: "http://127.0.0.1:9001/base" });
    expect(same.status).toBe(200);
    expect(same.body.config_version).toBe(added.body.config_version);
    const bad = await api("PUT", `${svc(project)}/echo/replicas/r2`, { url: "ftp://x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("url");

    const pulled = await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, token);
    expect(pulled.status).toBe(200);
    expect(pulled.body.version).toBe(added.body.config_version);
    expect(pulled.body.services).toEqual([
      expect.objectContaining({
        host: "echo.localhost",
        https: false,
        auth: true,
        read_timeout_ms: 600_000,
        client_max_body_size: 1048576,
        replicas: [{ id: "r1", url: "http://127.0.0.1:9001/base" }],
      }),
    ]);
    expect(pulled.body.entrypoint).toEqual({ host: "gateway.localhost" });
    const res = await SELF.fetch("http://gateplane.test/api/v1/agent/config", {
      headers: { authorization: `Bearer ${token}`, "if-none-match": `"${pulled.body.version}"` },
    });
    expect(res.status).toBe(304);

    const ack = await api("POST", "/api/v1/agent/ack", { version: pulled.body.version, error: null }, token);
    expect(ack.status).toBe(204);
    const shown = (await api<Service>("GET", `${svc(project)}/echo`)).body;
    expect(shown.gateway_replicas).toEqual([
      { replica_num: 0, applied_version: pulled.body.version, state: "in_sync", error: null, traffic: null },
    ]);

    const removed = await api<Service>("DELETE", `${svc(project)}/echo/replicas/r1`);
    expect(removed.status).toBe(200);
    expect(removed.body.replicas).toEqual([]);
    expect((await api("DELETE", `${svc(project)}/echo/replicas/r1`)).status).toBe(404);
    expect((await api("DELETE", `${svc(project)}/echo`)).status).toBe(200);
    expect((await api("GET", `${svc(project)}/echo`)).status).toBe(404);
    const after = await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, token);
    expect(after.body.services).toEqual([]);
  });

  it("registers prefill and decode replicas of a PD service, says when it cannot route, and carries roles to the agents", async () => {
    const project = await newProject();
    const token = await runningGateway(project, "gw-pd");
    const router = {
      type: "sglang",
      pd_disaggregation: true,
      prefill_policy: "cache_aware",
      decode_policy: "power_of_two",
    };
    expect((await applyService(project, echo({ router }))).status).toBe(201);
    const prefill = await api<Service>("PUT", `${svc(project)}/echo/replicas/p1`, {
      url: "http://127.0.0.1:30001",
      role: "prefill",
      bootstrap_port: 8998,
    });
    expect(prefill.status).toBe(201);
    expect(prefill.body.replicas).toEqual([
      expect.objectContaining({ id: "p1", role: "prefill", bootstrap_port: 8998 }),
    ]);
    expect(prefill.body.pd).toEqual({
      prefill: 1,
      decode: 0,
      routable: false,
      reason:
        "service echo disaggregates prefill and decode and needs at least one replica of each role (has 1 prefill, 0 decode)",
    });
    const decode = await api<Service>("PUT", `${svc(project)}/echo/replicas/d1`, {
      url: "http://127.0.0.1:30002",
      role: "decode",
    });
    expect(decode.body.pd).toEqual({ prefill: 1, decode: 1, routable: true, reason: null });
    // The role changes in place, as the URL does.
    const same = await api<Service>("PUT", `${svc(project)}/echo/replicas/d1`, {
      url: "http://127.0.0.1:30002",
      role: "decode",
    });
    expect(same.body.config_version).toBe(decode.body.config_version);
    const bad = await api("PUT", `${svc(project)}/echo/replicas/d2`, {
      url: "http://127.0.0.1:30003",
      role: "decode",
      bootstrap_port: 8998,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("bootstrap_port");
    expect(
      (await api("PUT", `${svc(project)}/echo/replicas/d2`, { url: "http://127.0.0.1:30003", role: "router" })).status,
    ).toBe(400);

    const pulled = await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, token);
    const [service] = pulled.body.services;
    expect(service?.router).toMatchObject({
      pd_disaggregation: true,
      prefill_policy: "cache_aware",
      decode_policy: "power_of_two",
    });
    expect(service?.replicas).toEqual([
      { id: "p1", url: "http://127.0.0.1:30001", role: "prefill", bootstrap_port: 8998 },
      { id: "d1", url: "http://127.0.0.1:30002", role: "decode" },
    ]);
    // A gateway's router has no PD fields (per service, as dstack's).
    expect((await applyService(project, echo({ name: "co", router: { type: "sglang" } }))).status).toBe(201);
    expect((await api<Service>("GET", `${svc(project)}/co`)).body.pd).toBeNull();
  });

  it("records typed events in the gateway's order, filterable by type", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-ev");
    await applyService(project, echo());
    await api("PUT", `${svc(project)}/echo/replicas/r1`, { url: "http://127.0.0.1:9001" });
    await api("DELETE", `${svc(project)}/echo/replicas/r1`);
    await api("DELETE", `${svc(project)}/echo`);
    const all = (await api("GET", `/api/v1/projects/${project}/events?gateway=gw-ev`)).body.events as {
      type: string | null;
      data: Record<string, unknown> | null;
      sequence: number;
    }[];
    const typed = all.filter((e) => e.type !== null);
    const transitions = (type: string) =>
      typed.filter((e) => e.type === type).map((e) => `${e.data?.from ?? "-"}>${e.data?.to}`);
    expect(transitions("gateway.status")).toEqual(["->submitted", "submitted>provisioning", "provisioning>running"]);
    expect(transitions("gateway.replica.status")).toEqual([
      "->submitted",
      "submitted>provisioning",
      "provisioning>running",
    ]);
    expect(typed.filter((e) => e.type?.startsWith("service.")).map((e) => e.type)).toEqual([
      "service.registered",
      "service.replica.registered",
      "service.replica.unregistered",
      "service.unregistered",
    ]);
    expect(typed[0]?.data).toEqual({ from: null, to: "submitted", message: null });
    expect(typed.at(-3)?.data).toEqual({ service: "echo", replica_id: "r1", url: "http://127.0.0.1:9001" });
    const sequences = all.map((e) => e.sequence).filter((n) => n !== null);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);

    const only = await api("GET", `/api/v1/projects/${project}/events?type=service.registered`);
    expect(only.body.events).toEqual([
      expect.objectContaining({ type: "service.registered", data: { service: "echo" } }),
    ]);
    const bad = await api("GET", `/api/v1/projects/${project}/events?type=nope`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("type");
  });

  it("keeps service names unique in a project and refuses stale plans", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-a1");
    await runningGateway(project, "gw-b1");
    expect((await applyService(project, echo())).status).toBe(201);
    const moved = await applyService(project, echo({ gateway: "gw-b1" }));
    expect(moved.status).toBe(409);
    expect(moved.body.error).toMatchObject({ code: "not_updatable", field: "gateway" });
    const plan = await api("POST", `${svc(project)}/plan`, { spec: { configuration: echo({ auth: false }) } });
    expect(plan.body).toMatchObject({ action: "update", in_place: true });
    expect(plan.body.changes).toEqual([{ field: "auth", from: true, to: false }]);
    expect((await applyService(project, echo({ read_timeout: 30 }))).status).toBe(200);
    const stale = await api("POST", `${svc(project)}/apply`, {
      plan: { spec: { configuration: echo({ auth: false }) }, current_resource: plan.body.current_resource },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("conflict");
    const list = await api<{ services: Service[] }>("GET", svc(project));
    expect(list.body.services.map((s) => [s.name, s.gateway])).toEqual([["echo", "gw-a1"]]);
  });
});

describe("agent connection", () => {
  it("pushes each new document over the WebSocket and records ACK, NACK and stats", async () => {
    const project = await newProject();
    const token = await runningGateway(project, "gw-ws");
    const { ws, next } = await connect(token);
    const first = await nextConfig(next);
    expect(first.services).toEqual([]);

    const created = (await applyService(project, echo())).body as Service;
    const pushed = await nextConfig(next);
    expect(pushed.version).toBe(created.config_version);
    expect(pushed.services.map((s) => s.host)).toEqual(["echo.localhost"]);

    ws.send(JSON.stringify({ type: "ack", version: pushed.version }));
    await waitFor(
      "in sync",
      async () => (await api<Service>("GET", `${svc(project)}/echo`)).body.gateway_replicas[0]?.state === "in_sync",
    );

    const gateway = (await getGateway(project, "gw-ws")).body;
    expect(gateway.replicas[0]!.config).toEqual({
      desired_version: pushed.version,
      applied_version: pushed.version,
      error: null,
      rejected_services: [],
    });

    await api("PUT", `${svc(project)}/echo/replicas/r1`, { url: "http://127.0.0.1:9" });
    const third = await nextConfig(next);
    ws.send(JSON.stringify({ type: "nack", version: third.version, error: "replica r1: connection refused" }));
    const rejected = await waitFor("rejected", async () => {
      const s = (await api<Service>("GET", `${svc(project)}/echo`)).body;
      return s.gateway_replicas[0]?.state === "rejected" ? s : null;
    });
    expect(rejected.gateway_replicas[0]!.error).toBe("replica r1: connection refused");

    ws.send(
      JSON.stringify({
        type: "stats",
        at: Date.now(),
        services: [
          {
            service: "echo",
            windows: {
              "30": { requests: 30, request_time: 0.1 },
              "60": { requests: 60, request_time: 0.2 },
              "300": { requests: 300, request_time: 0.3 },
            },
          },
        ],
      }),
    );
    const withStats = await waitFor(
      "stats",
      async () => (await api<Service>("GET", `${svc(project)}/echo`)).body.stats,
    );
    expect(withStats.windows["60"]).toEqual({ requests: 60, request_time: 0.2 });

    ws.send(JSON.stringify({ type: "ping" }));
    expect((await next()).type).toBe("pong");
    ws.close(1000, "done");
  });

  it("refuses forged, expired and foreign tokens; a replica's token never reaches another gateway", async () => {
    const project = await newProject();
    const tokenA = await runningGateway(project, "gw-tok-a");
    await runningGateway(project, "gw-tok-b");
    const stubB = await gatewayStub(project, "gw-tok-b");
    const [header, payload, signature] = tokenA.split(".");
    const claims = JSON.parse(atob(payload!.replace(/-/g, "+").replace(/_/g, "/")));
    const forged = `${header}.${btoa(JSON.stringify({ ...claims, obj: stubB.id.toString() }))
      .replace(/=+$/, "")
      .replace(/\+/g, "-")
      .replace(/\//g, "_")}.${signature}`;
    for (const bad of [forged, `${tokenA}x`, "not-a-jwt"]) {
      expect((await api("GET", "/api/v1/agent/config", undefined, bad)).status).toBe(401);
    }

    const key = await importJWK(JSON.parse(env.AGENT_SIGNING_KEY), "ES256");
    const expired = await new SignJWT({ obj: claims.obj, gw: claims.gw, rn: 0 })
      .setProtectedHeader({ alg: "ES256", kid: "test" })
      .setIssuer("gateplane")
      .setAudience("gateplane-agent")
      .setSubject(claims.sub)
      .setIssuedAt(1_000)
      .setExpirationTime(2_000)
      .sign(key);
    expect((await api("GET", "/api/v1/agent/config", undefined, expired)).status).toBe(401);
    expect((await api("POST", "/api/v1/agent/token", undefined, expired)).status).toBe(401);

    // A host that was off longer than a token's life can still refresh (within the grace period).
    const now = Math.floor(Date.now() / 1000);
    const lapsed = await new SignJWT({ obj: claims.obj, gw: claims.gw, rn: 0 })
      .setProtectedHeader({ alg: "ES256", kid: "test" })
      .setIssuer("gateplane")
      .setAudience("gateplane-agent")
      .setSubject(claims.sub)
      .setIssuedAt(now - 7200)
      .setExpirationTime(now - 3600)
      .sign(key);
    expect((await api("GET", "/api/v1/agent/config", undefined, lapsed)).status).toBe(401);
    const renewed = await api("POST", "/api/v1/agent/token", undefined, lapsed);
    expect(renewed.status).toBe(200);
    expect((await api("GET", "/api/v1/agent/config", undefined, renewed.body.token)).status).toBe(200);

    const other = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const foreign = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test" }).sign(other.privateKey);
    expect((await api("GET", "/api/v1/agent/config", undefined, foreign)).status).toBe(401);

    // The genuine token reads gateway A's document only.
    const doc = await api<ConfigDocument>("GET", "/api/v1/agent/config", undefined, tokenA);
    expect(doc.body.gateway.name).toBe("gw-tok-a");
  });
});
