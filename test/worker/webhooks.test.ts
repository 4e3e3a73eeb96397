import { createScheduledController, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
// @ts-expect-error: the README's verification snippet, executed as published.
import { verifyWebhook } from "../../docs/verify-webhook.mjs";
import type { Delivery, Webhook, WebhookPayload, WebhookWithSecret } from "../../schema/webhooks.ts";
import worker from "../../worker/index.ts";
import {
  api,
  applyConfig,
  gatewayStub,
  localConfig,
  newProject,
  newUser,
  unique,
  waitFor as waitForAtMost,
} from "./helpers.ts";

// Each test provisions a local gateway (a host process) on a machine shared with other test runs:
// bounds are generous, and nothing here measures speed.
const LOADED_MACHINE = { timeout: 90_000 };
const waitFor = <T>(what: string, fn: () => Promise<T | null | undefined | false>) => waitForAtMost(what, fn, 45_000);

const verify = verifyWebhook as (
  body: string,
  header: string | undefined,
  secret: string,
  options?: { toleranceSeconds?: number; now?: number },
) => boolean;

interface Seen {
  headers: Record<string, string>;
  body: string;
  verified: boolean | null;
  status: number;
}
interface ReceiverState {
  seen: Seen[];
  processed: string[];
}

/** A fresh path on the real receiver (test/worker/global-setup-webhooks.ts). */
const hookPath = () => `/${unique("hook")}`;
const hookUrl = (path: string) => `${env.WEBHOOK_RECEIVER_URL}${path}`;

async function program(path: string, set: Record<string, unknown> = {}): Promise<ReceiverState> {
  const res = await fetch(`${env.WEBHOOK_RECEIVER_URL}/__control${path}`, {
    method: "POST",
    body: JSON.stringify(set),
  });
  return res.json();
}
const received = (path: string) => program(path);
const payloads = (state: ReceiverState) => state.seen.map((s) => JSON.parse(s.body) as WebhookPayload);

const base = (project: string) => `/api/v1/projects/${project}/webhooks`;

async function createWebhook(project: string, body: Record<string, unknown>): Promise<WebhookWithSecret> {
  const res = await api<WebhookWithSecret>("POST", base(project), body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function deliveries(project: string, id: string): Promise<Delivery[]> {
  const res = await api<{ deliveries: Delivery[] }>("GET", `${base(project)}/${id}/deliveries`);
  expect(res.status).toBe(200);
  return res.body.deliveries;
}

const dispatcher = (id: string) => env.WEBHOOKS.get(env.WEBHOOKS.idFromName(id));

/** Makes a delivery due now (instead of sleeping through its back-off) and runs the dispatcher's alarm. */
async function retryNow(webhookId: string): Promise<void> {
  await env.DB.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE webhook_id = ? AND state = 'pending'")
    .bind(webhookId)
    .run();
  await runInDurableObject(dispatcher(webhookId), (_o, state) => state.storage.setAlarm(Date.now() + 60_000));
  expect(await runDurableObjectAlarm(dispatcher(webhookId))).toBe(true);
}

/** A gateway with a service: `addReplica` then emits one `service.replica.registered` event per call. */
async function gatewayWithService(project: string) {
  const gateway = unique("gw-");
  expect((await applyConfig(project, localConfig(gateway))).status).toBe(201);
  const configuration = { type: "service", name: "echo", https: false, gateway };
  const plan = await api("POST", `/api/v1/projects/${project}/services/plan`, { spec: { configuration } });
  expect(plan.status).toBe(200);
  const applied = await api("POST", `/api/v1/projects/${project}/services/apply`, {
    plan: { spec: { configuration }, current_resource: null },
  });
  expect(applied.status, JSON.stringify(applied.body)).toBe(201);
  return {
    gateway,
    addReplica: async (id: string) => {
      const res = await api("PUT", `/api/v1/projects/${project}/services/echo/replicas/${id}`, {
        url: `http://10.0.0.9:${8000 + Number(id.replace(/\D/g, "") || 0)}`,
      });
      expect(res.status).toBe(201);
    },
  };
}

describe("webhook endpoints", LOADED_MACHINE, () => {
  it("returns the secret only when created, and lists endpoints without it", async () => {
    const project = await newProject();
    const created = await createWebhook(project, { url: "https://example.com/hooks", events: ["gateway.*"] });
    expect(created.secret).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
    expect(created).toMatchObject({ url: "https://example.com/hooks", events: ["gateway.*"], enabled: true });
    const got = await api<Webhook>("GET", `${base(project)}/${created.id}`);
    expect(got.body).not.toHaveProperty("secret");
    const list = await api<{ webhooks: Webhook[] }>("GET", base(project));
    expect(list.body.webhooks.map((w) => w.id)).toEqual([created.id]);
    expect(JSON.stringify(list.body)).not.toContain(created.secret);
    // Sealed at rest: the plaintext is not in D1.
    const row = await env.DB.prepare("SELECT * FROM webhooks WHERE id = ?").bind(created.id).first();
    expect(JSON.stringify(row)).not.toContain(created.secret);
  });

  it("rejects bad input with the field named, and changes nothing", async () => {
    const project = await newProject();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ url: "http://example.com/h", events: ["*"] }, "url", /https:\/\/ URL/],
      [{ url: "https://user:pw@example.com/h", events: ["*"] }, "url", /credentials/],
      [{ url: "not a url", events: ["*"] }, "url", /expected a URL/],
      [{ url: "https://example.com/h", events: ["gateway.bogus"] }, "events[0]", /expected an event type/],
      [{ url: "https://example.com/h", events: [] }, "events", /at least one/],
      [{ url: "https://example.com/h", events: "gateway.status" }, "events", /expected a list/],
      [{ url: "https://example.com/h", events: ["*"], secret: "short" }, "secret", /at least 24/],
      [{ url: "https://example.com/h", events: ["*"], colour: "red" }, "colour", /unknown field/],
      [{ events: ["*"] }, "url", /required/],
    ];
    for (const [body, field, message] of cases) {
      const res = await api("POST", base(project), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await api("GET", base(project))).body.webhooks).toEqual([]);

    const hook = await createWebhook(project, { url: "http://127.0.0.1:9/h", events: ["*"] });
    const both = await api("PATCH", `${base(project)}/${hook.id}`, { secret: "x".repeat(30), rotate_secret: true });
    expect(both.status).toBe(400);
    expect(both.body.error.field).toBe("rotate_secret");
    const badState = await api("GET", `${base(project)}/${hook.id}/deliveries?state=lost`);
    expect(badState.body.error).toMatchObject({ field: "state", message: expect.stringMatching(/pending/) });
    const badId = await api("POST", `${base(project)}/${hook.id}/deliveries/abc/redeliver`);
    expect(badId.status).toBe(400);
    expect(badId.body.error.field).toBe("delivery");
    expect((await api("GET", `${base(project)}/wh_missing`)).status).toBe(404);
    expect((await api<Webhook>("GET", `${base(project)}/${hook.id}`)).body.url).toBe("http://127.0.0.1:9/h");
  });

  it("is described in the OpenAPI document", async () => {
    const doc = (await api("GET", "/api/openapi.json", undefined, null)).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/v1/projects/{project}/webhooks",
        "/api/v1/projects/{project}/webhooks/{id}/deliveries/{delivery}/redeliver",
      ]),
    );
    expect(doc.components.schemas.CreateWebhookRequest.required).toEqual(["url", "events"]);
  });

  it("lets members read but only admins change", async () => {
    const project = await newProject();
    const member = await newUser(project, "member");
    const hook = await createWebhook(project, { url: "https://example.com/h", events: ["*"] });
    expect((await api("GET", base(project), undefined, member)).status).toBe(200);
    expect((await api("POST", base(project), { url: "https://e.com/x", events: ["*"] }, member)).status).toBe(403);
    expect((await api("PATCH", `${base(project)}/${hook.id}`, { enabled: false }, member)).status).toBe(403);
    expect((await api("DELETE", `${base(project)}/${hook.id}`, undefined, member)).status).toBe(403);
    expect((await api("POST", `${base(project)}/${hook.id}/ping`, undefined, member)).status).toBe(403);
  });
});

describe("webhook deliveries", LOADED_MACHINE, () => {
  it("delivers signed events that match each endpoint's filter, verifiable with the README snippet", async () => {
    const project = await newProject();
    const servicePath = hookPath();
    const statusPath = hookPath();
    const services = await createWebhook(project, { url: hookUrl(servicePath), events: ["service.*"] });
    const statuses = await createWebhook(project, { url: hookUrl(statusPath), events: ["gateway.status"] });
    await program(servicePath, { secret: services.secret });
    await program(statusPath, { secret: statuses.secret });
    const { gateway, addReplica } = await gatewayWithService(project);
    await addReplica("r1");

    const got = await waitFor("service events", async () => {
      const state = await received(servicePath);
      return state.seen.length >= 2 && state;
    });
    expect(got.seen.map((s) => s.verified)).toEqual([true, true]);
    expect(payloads(got).map((p) => p.type)).toEqual(["service.registered", "service.replica.registered"]);
    const first = got.seen[0]!;
    const body = JSON.parse(first.body) as WebhookPayload;
    expect(Object.keys(body)).toEqual(["id", "type", "created_at", "project", "gateway", "sequence", "data"]);
    expect(body).toMatchObject({ project, gateway, type: "service.registered", data: { service: "echo" } });
    expect(body.id).toMatch(/^evt_\d+$/);
    expect(first.headers).toMatchObject({
      "content-type": "application/json",
      "gateplane-event-id": body.id,
      "gateplane-event-type": "service.registered",
      "user-agent": expect.stringMatching(/^Gateplane-Webhooks\//),
    });
    expect(first.headers["gateplane-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);

    // The snippet refuses what it must: another secret, a changed body, a stale timestamp.
    const header = first.headers["gateplane-signature"];
    expect(verify(first.body, header, services.secret)).toBe(true);
    expect(verify(first.body, header, statuses.secret)).toBe(false);
    expect(verify(first.body.replace("echo", "echp"), header, services.secret)).toBe(false);
    expect(verify(first.body, header, services.secret, { now: Date.now() + 10 * 60_000 })).toBe(false);

    const statusEvents = await waitFor("gateway.status", async () => {
      const state = await received(statusPath);
      return state.seen.length >= 1 && state;
    });
    expect(new Set(payloads(statusEvents).map((p) => p.type))).toEqual(new Set(["gateway.status"]));
    expect(statusEvents.seen.every((s) => s.verified)).toBe(true);
    const log = await deliveries(project, services.id);
    expect(log.map((d) => [d.event_type, d.state, d.attempts, d.last_status])).toEqual([
      ["service.replica.registered", "delivered", 1, 200],
      ["service.registered", "delivered", 1, 200],
    ]);
  });

  it("delivers one gateway's first attempts in sequence order", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.replica.registered"] });
    const { addReplica } = await gatewayWithService(project);
    for (let i = 1; i <= 6; i++) await addReplica(`r${i}`);
    const state = await waitFor("six deliveries", async () => {
      const s = await received(path);
      return s.seen.length >= 6 && s;
    });
    const got = payloads(state);
    expect(got.map((p) => (p.data as { replica_id: string }).replica_id)).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
    const sequences = got.map((p) => p.sequence!);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect((await deliveries(project, hook.id)).every((d) => d.state === "delivered")).toBe(true);
  });

  it("retries a failing receiver with doubling back-off and the same event id, so it processes once", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.replica.registered"] });
    const { addReplica } = await gatewayWithService(project);
    // The receiver does the work, then fails to answer (twice): Gateplane must send it again.
    await program(path, { fail_next: 2, process_then_fail: true, secret: hook.secret });
    await addReplica("r1");

    const first = await waitFor("first failed attempt", async () => {
      const [d] = await deliveries(project, hook.id);
      return d?.attempts === 1 && d;
    });
    expect(first).toMatchObject({ state: "pending", last_status: 500, last_error: "HTTP 500" });
    expect(first.response_excerpt).toBe("nope 500");
    const gap = (d: Delivery) => Date.parse(d.next_attempt_at!) - Date.parse(d.last_attempt_at!);
    expect(gap(first)).toBeGreaterThanOrEqual(9_000);
    expect(gap(first)).toBeLessThanOrEqual(11_000);

    await retryNow(hook.id);
    const [second] = await deliveries(project, hook.id);
    expect(second).toMatchObject({ state: "pending", attempts: 2, last_status: 500 });
    expect(gap(second!)).toBeGreaterThanOrEqual(19_000);
    expect(gap(second!)).toBeLessThanOrEqual(21_000);

    await retryNow(hook.id);
    const [third] = await deliveries(project, hook.id);
    expect(third).toMatchObject({ state: "delivered", attempts: 3, last_status: 200, next_attempt_at: null });

    const state = await received(path);
    expect(state.seen.map((s) => s.status)).toEqual([500, 500, 200]);
    const ids = state.seen.map((s) => s.headers["gateplane-event-id"]);
    expect(new Set(ids).size).toBe(1);
    expect(state.processed).toEqual([ids[0]]);
    const webhook = (await api<Webhook>("GET", `${base(project)}/${hook.id}`)).body;
    expect(webhook).toMatchObject({ enabled: true, consecutive_failures: 0, failing_since: null });
  });

  it("counts an attempt that outlives its timeout as failed", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.registered"] });
    await program(path, { delay_next: 1, delay_ms: 4_000 });
    await gatewayWithService(project);
    const [d] = await waitFor("timed-out attempt", async () => {
      const list = await deliveries(project, hook.id);
      return list[0]?.attempts === 1 && list;
    });
    expect(d).toMatchObject({ state: "pending", last_status: null, last_error: "no answer within 2 s" });
  });

  it("creates no duplicate deliveries when a write-through is repeated", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.*"] });
    const { gateway } = await gatewayWithService(project);
    await waitFor("delivered", async () => (await deliveries(project, hook.id))[0]?.state === "delivered");
    const event = await env.DB.prepare(
      "SELECT e.* FROM events e JOIN projects p ON p.id = e.project_id WHERE p.name = ? AND e.type = 'service.registered'",
    )
      .bind(project)
      .first<{
        gateway_id: string;
        sequence: number;
        message: string;
        created_at: string;
        type: string;
        data: string;
      }>();
    // The object crashed after D1 committed but before it acknowledged its outbox: the event is written again.
    const stub = await gatewayStub(project, gateway);
    await runInDurableObject(stub, async (obj, state) => {
      state.storage.sql.exec(
        "INSERT INTO outbox (seq, message, actor, created_at, type, data) VALUES (?, ?, NULL, ?, ?, ?)",
        event!.sequence,
        event!.message,
        event!.created_at,
        event!.type,
        event!.data,
      );
      await (obj as unknown as { flush(): Promise<unknown> }).flush();
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM outbox").one().n).toBe(0);
    });
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE source_key = ?")
      .bind(`${event!.gateway_id}:${event!.sequence}`)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
    expect((await deliveries(project, hook.id)).length).toBe(1);
    expect((await received(path)).seen.length).toBe(1);
  });

  it("gives up after the retry window, and redelivers on request with the same event id", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.registered"] });
    await program(path, { fail_next: 2, fail_status: 503 });
    await gatewayWithService(project);
    await waitFor("first attempt", async () => (await deliveries(project, hook.id))[0]?.attempts === 1);
    // As if 24 h of retries had passed.
    await env.DB.prepare("UPDATE webhook_deliveries SET retry_until = 1 WHERE webhook_id = ?").bind(hook.id).run();
    await retryNow(hook.id);
    const [failed] = await deliveries(project, hook.id);
    expect(failed).toMatchObject({ state: "failed", attempts: 2, last_status: 503, next_attempt_at: null });

    const redelivered = await api<Delivery>("POST", `${base(project)}/${hook.id}/deliveries/${failed!.id}/redeliver`);
    expect(redelivered.status).toBe(200);
    expect(redelivered.body).toMatchObject({ id: failed!.id, state: "delivered", attempts: 3, last_status: 200 });
    const ids = (await received(path)).seen.map((s) => s.headers["gateplane-event-id"]);
    expect(ids).toEqual([failed!.event_id, failed!.event_id, failed!.event_id]);
    const missing = await api("POST", `${base(project)}/${hook.id}/deliveries/999999999/redeliver`);
    expect(missing.status).toBe(404);
  });

  it("disables an endpoint failing for 24 h, tells the other endpoints, and resumes when re-enabled", async () => {
    const project = await newProject();
    const failingPath = hookPath();
    const watcherPath = hookPath();
    const failing = await createWebhook(project, { url: hookUrl(failingPath), events: ["service.registered"] });
    const watcher = await createWebhook(project, { url: hookUrl(watcherPath), events: ["webhook.disabled"] });
    await program(watcherPath, { secret: watcher.secret });
    await program(failingPath, { fail_next: 1000 });
    await gatewayWithService(project);
    await waitFor("first failure", async () => (await deliveries(project, failing.id))[0]?.attempts === 1);
    // Failing since yesterday: the next failure is the last straw.
    await env.DB.prepare("UPDATE webhooks SET failing_since = ? WHERE id = ?")
      .bind(new Date(Date.now() - 25 * 3600_000).toISOString(), failing.id)
      .run();
    await retryNow(failing.id);

    const disabled = (await api<Webhook>("GET", `${base(project)}/${failing.id}`)).body;
    expect(disabled.enabled).toBe(false);
    expect(disabled.consecutive_failures).toBeGreaterThanOrEqual(2);
    expect(disabled.disabled_reason).toMatch(/failed for 24 h/);
    const events = await api("GET", `/api/v1/projects/${project}/events?type=webhook.disabled`);
    expect(events.body.events).toEqual([
      expect.objectContaining({
        type: "webhook.disabled",
        gateway_name: null,
        data: { webhook_id: failing.id, url: failing.url, reason: disabled.disabled_reason },
      }),
    ]);
    const told = await waitFor("webhook.disabled delivered", async () => {
      const s = await received(watcherPath);
      return s.seen.length >= 1 && s;
    });
    expect(told.seen[0]!.verified).toBe(true);
    expect(payloads(told)[0]).toMatchObject({ type: "webhook.disabled", gateway: null, sequence: null });

    // While disabled nothing is sent, and nothing is lost: the delivery waits.
    expect(await runDurableObjectAlarm(dispatcher(failing.id))).toBe(false);
    expect((await api("POST", `${base(project)}/${failing.id}/ping`)).status).toBe(409);
    await program(failingPath, { fail_next: 0 });
    const enabled = await api<Webhook>("PATCH", `${base(project)}/${failing.id}`, { enabled: true });
    expect(enabled.body).toMatchObject({ enabled: true, disabled_reason: null, consecutive_failures: 0 });
    await retryNow(failing.id);
    expect((await deliveries(project, failing.id))[0]).toMatchObject({ state: "delivered", last_status: 200 });
  });

  it("disables an endpoint at once when it answers 410 Gone", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.registered"] });
    await program(path, { fail_next: 1, fail_status: 410 });
    await gatewayWithService(project);
    const gone = await waitFor("disabled", async () => {
      const w = (await api<Webhook>("GET", `${base(project)}/${hook.id}`)).body;
      return !w.enabled && w;
    });
    expect(gone.disabled_reason).toBe("the endpoint answered 410 Gone");
  });

  it("pings, and signs with both secrets while a rotation's grace period lasts", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["*"], secret: "s".repeat(32) });
    const ping = await api<Delivery>("POST", `${base(project)}/${hook.id}/ping`);
    expect(ping.status).toBe(200);
    expect(ping.body).toMatchObject({ event_type: "ping", state: "delivered", last_status: 200, attempts: 1 });
    const rotated = await api<WebhookWithSecret>("PATCH", `${base(project)}/${hook.id}`, { rotate_secret: true });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.previous_secret_expires_at).not.toBeNull();
    await api("POST", `${base(project)}/${hook.id}/ping`);
    const seen = (await received(path)).seen;
    expect(seen).toHaveLength(2);
    const [before, after] = seen as [Seen, Seen];
    expect(JSON.parse(before.body)).toMatchObject({ type: "ping", project, data: { webhook_id: hook.id } });
    expect(before.headers["gateplane-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(after.headers["gateplane-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verify(after.body, after.headers["gateplane-signature"], "s".repeat(32))).toBe(true);
    expect(verify(after.body, after.headers["gateplane-signature"], rotated.body.secret)).toBe(true);
    expect(JSON.parse(before.body).id).not.toBe(JSON.parse(after.body).id);
  });

  it("the cron wakes a dispatcher whose poke was lost", async () => {
    const project = await newProject();
    const path = hookPath();
    const hook = await createWebhook(project, { url: hookUrl(path), events: ["service.registered"] });
    await program(path, { fail_next: 1 });
    await gatewayWithService(project);
    await waitFor("first failure", async () => (await deliveries(project, hook.id))[0]?.attempts === 1);
    await runInDurableObject(dispatcher(hook.id), (_o, state) => state.storage.deleteAlarm());
    await env.DB.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE webhook_id = ?").bind(hook.id).run();
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env);
    await waitFor("delivered", async () => (await deliveries(project, hook.id))[0]?.state === "delivered");
  });

  it("deletes an endpoint with its delivery log", async () => {
    const project = await newProject();
    const hook = await createWebhook(project, { url: hookUrl(hookPath()), events: ["*"] });
    await api("POST", `${base(project)}/${hook.id}/ping`);
    expect((await api("DELETE", `${base(project)}/${hook.id}`)).status).toBe(204);
    expect((await api("GET", `${base(project)}/${hook.id}`)).status).toBe(404);
    const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = ?")
      .bind(hook.id)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
