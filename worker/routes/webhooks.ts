/**
 * @module
 * `/api/v1/projects/:project/webhooks`: a project's webhook endpoints, their delivery log, manual
 * redelivery and test pings. Members read; admins change. Sending is the dispatchers' job
 * (`durable-objects/webhook-dispatcher.ts`); these routes only write D1 and wake them.
 */
import { and, desc, eq, lt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import * as v from "valibot";
import { secretAad } from "../../core/aad.ts";
import { randomBase62, sealJson } from "../../core/crypto.ts";
import { events, webhookDeliveries, webhooks } from "../../core/db/schema.ts";
import type { Env } from "../../core/env.ts";
import { dispatcherStub, pokeDispatchers, RETRY_WINDOW_MS } from "../../core/webhook-deliveries.ts";
import { parseOrThrow } from "../../schema/issues.ts";
import { PAGE_LIMIT_DEFAULT } from "../../schema/paging.ts";
import {
  CreateWebhookRequest,
  DELIVERY_STATES,
  type Delivery,
  PING_EVENT,
  UpdateWebhookRequest,
  type Webhook,
  type WebhookWithSecret,
} from "../../schema/webhooks.ts";
import { type AppEnv, type ProjectContext, requireProjectAdmin } from "../auth.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import { readJson } from "../http.ts";
import { cursorKeys, pageRequest, takePage } from "../paging.ts";

/** How long the previous secret still signs after a rotation, so receivers can switch without a gap. */
const ROTATION_GRACE_MS = 24 * 60 * 60 * 1000;

type WebhookRow = typeof webhooks.$inferSelect;

const view = (w: WebhookRow): Webhook => ({
  id: w.id,
  url: w.url,
  events: w.events,
  description: w.description,
  enabled: w.enabled,
  disabled_reason: w.disabledReason,
  disabled_at: w.disabledAt,
  consecutive_failures: w.consecutiveFailures,
  failing_since: w.failingSince,
  last_success_at: w.lastSuccessAt,
  previous_secret_expires_at:
    w.previousSecretExpiresAt && Date.parse(w.previousSecretExpiresAt) > Date.now() ? w.previousSecretExpiresAt : null,
  created_at: w.createdAt,
});

const newSecret = () => `whsec_${randomBase62(32)}`;

async function seal(env: Env, id: string, secret: string) {
  const { ciphertext, iv } = await sealJson(env.CREDENTIALS_KEY, secret, secretAad(id));
  return { secretCiphertext: ciphertext, secretIv: iv };
}

async function requireWebhook(env: Env, project: ProjectContext, id: string): Promise<WebhookRow> {
  const row = await drizzle(env.DB)
    .select()
    .from(webhooks)
    .where(and(eq(webhooks.projectId, project.id), eq(webhooks.id, id)))
    .get();
  if (!row) throw notFound(`Webhook ${id} does not exist in project ${project.name}`);
  return row;
}

const iso = (ms: number) => new Date(ms).toISOString();

function deliveriesQuery(env: Env) {
  return drizzle(env.DB)
    .select({
      id: webhookDeliveries.id,
      webhook_id: webhookDeliveries.webhookId,
      event_id: webhookDeliveries.eventKey,
      event_type: webhookDeliveries.eventType,
      gateway: events.gatewayName,
      sequence: events.sequence,
      state: webhookDeliveries.state,
      attempts: webhookDeliveries.attempts,
      next_attempt_at: webhookDeliveries.nextAttemptAt,
      last_attempt_at: webhookDeliveries.lastAttemptAt,
      last_status: webhookDeliveries.lastStatus,
      last_error: webhookDeliveries.lastError,
      response_excerpt: webhookDeliveries.responseExcerpt,
      created_at: webhookDeliveries.createdAt,
      delivered_at: webhookDeliveries.deliveredAt,
    })
    .from(webhookDeliveries)
    .leftJoin(events, eq(events.id, webhookDeliveries.eventId));
}

type DeliveryRow = Awaited<ReturnType<ReturnType<typeof deliveriesQuery>["all"]>>[number];

const deliveryView = (d: DeliveryRow): Delivery => ({
  ...d,
  next_attempt_at: d.state === "pending" ? iso(d.next_attempt_at) : null,
});

async function requireDelivery(env: Env, webhookId: string, id: number): Promise<Delivery> {
  const row = await deliveriesQuery(env)
    .where(and(eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.id, id)))
    .get();
  if (!row) throw notFound(`Delivery ${id} does not exist for webhook ${webhookId}`);
  return deliveryView(row);
}

const deliveryParam = (value: string) =>
  parseOrThrow(
    v.object({
      delivery: v.pipe(
        v.string(),
        v.regex(/^\d{1,15}$/, "expected a delivery id (a number)"),
        v.transform((s) => Number(s)),
      ),
    }),
    { delivery: value },
  ).delivery;

function requireEnabled(hook: WebhookRow): void {
  if (!hook.enabled) {
    throw conflict("webhook_disabled", `Webhook ${hook.id} is disabled; enable it first (enabled: true)`, "enabled");
  }
}

/** Attempts a delivery now through the endpoint's dispatcher and returns the resulting log entry. */
async function deliverNow(env: Env, hook: WebhookRow, deliveryId: number): Promise<Delivery> {
  await dispatcherStub(env, hook.id).deliverNow(hook.id, deliveryId);
  return requireDelivery(env, hook.id, deliveryId);
}

export const webhooksRoutes = new Hono<AppEnv>()
  .post("/", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const body = await readJson(c, CreateWebhookRequest);
    const id = `wh_${randomBase62(16)}`;
    const secret = body.secret ?? newSecret();
    const [row] = await drizzle(c.env.DB)
      .insert(webhooks)
      .values({
        id,
        projectId: project.id,
        url: body.url,
        events: body.events,
        description: body.description ?? null,
        ...(await seal(c.env, id, secret)),
      })
      .returning();
    const created: WebhookWithSecret = { ...view(row!), secret };
    return c.json(created, 201);
  })
  .get("/", async (c) => {
    const rows = await drizzle(c.env.DB)
      .select()
      .from(webhooks)
      .where(eq(webhooks.projectId, c.get("project").id))
      .orderBy(webhooks.createdAt, webhooks.id);
    return c.json({ project: c.get("project").name, webhooks: rows.map(view) });
  })
  .get("/:id", async (c) => c.json(view(await requireWebhook(c.env, c.get("project"), c.req.param("id")))))
  .patch("/:id", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const body = await readJson(c, UpdateWebhookRequest);
    if (body.secret !== undefined && body.rotate_secret) {
      throw badRequest("rotate_secret: give either secret or rotate_secret, not both", "rotate_secret");
    }
    const hook = await requireWebhook(c.env, project, c.req.param("id"));
    const now = Date.now();
    const set: Partial<typeof webhooks.$inferInsert> = {};
    if (body.url !== undefined) set.url = body.url;
    if (body.events !== undefined) set.events = body.events;
    if (body.description !== undefined) set.description = body.description;
    let secret: string | undefined;
    if (body.secret !== undefined || body.rotate_secret) {
      secret = body.secret ?? newSecret();
      // The current secret keeps signing (as a second v1=) for the grace period.
      Object.assign(set, await seal(c.env, hook.id, secret), {
        previousSecretCiphertext: hook.secretCiphertext,
        previousSecretIv: hook.secretIv,
        previousSecretExpiresAt: iso(now + ROTATION_GRACE_MS),
      });
    }
    const enabling = body.enabled === true && !hook.enabled;
    if (enabling) {
      Object.assign(set, {
        enabled: true,
        disabledReason: null,
        disabledAt: null,
        consecutiveFailures: 0,
        failingSince: null,
      });
    } else if (body.enabled === false && hook.enabled) {
      Object.assign(set, { enabled: false, disabledReason: "disabled through the API", disabledAt: iso(now) });
    }
    let row = hook;
    if (Object.keys(set).length > 0) {
      const [updated] = await drizzle(c.env.DB).update(webhooks).set(set).where(eq(webhooks.id, hook.id)).returning();
      row = updated ?? hook;
    }
    // Deliveries that waited while it was disabled go out now.
    if (enabling) await pokeDispatchers(c.env, [hook.id]);
    return c.json(secret === undefined ? view(row) : { ...view(row), secret });
  })
  .delete("/:id", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const hook = await requireWebhook(c.env, project, c.req.param("id"));
    const db = drizzle(c.env.DB);
    await db.batch([
      db.delete(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook.id)),
      db.delete(webhooks).where(eq(webhooks.id, hook.id)),
    ]);
    return c.body(null, 204);
  })
  .get("/:id/deliveries", async (c) => {
    const hook = await requireWebhook(c.env, c.get("project"), c.req.param("id"));
    const state = c.req.query("state");
    if (state !== undefined && !(DELIVERY_STATES as readonly string[]).includes(state)) {
      throw badRequest(`state: expected one of ${DELIVERY_STATES.join(", ")}`, "state");
    }
    // Newest first by id (the webhook_deliveries_webhook index); the newest 100 without limit, as before paging.
    const { limit: asked, after } = pageRequest(c, "deliveries", cursorKeys.id);
    const limit = asked ?? PAGE_LIMIT_DEFAULT;
    const rows = await deliveriesQuery(c.env)
      .where(
        and(
          eq(webhookDeliveries.webhookId, hook.id),
          state ? eq(webhookDeliveries.state, state as Delivery["state"]) : undefined,
          after ? lt(webhookDeliveries.id, after[0]) : undefined,
        ),
      )
      .orderBy(desc(webhookDeliveries.id))
      .limit(limit + 1);
    const page = takePage(c, "deliveries", rows, limit, (r) => [r.id]);
    return c.json({ webhook_id: hook.id, deliveries: page.map(deliveryView) });
  })
  .post("/:id/deliveries/:delivery/redeliver", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const hook = await requireWebhook(c.env, project, c.req.param("id"));
    const id = deliveryParam(c.req.param("delivery"));
    await requireDelivery(c.env, hook.id, id);
    requireEnabled(hook);
    const now = Date.now();
    // Same row, same event id: a receiver that already processed it recognises it.
    await drizzle(c.env.DB)
      .update(webhookDeliveries)
      .set({ state: "pending", nextAttemptAt: now, retryUntil: now + RETRY_WINDOW_MS, deliveredAt: null })
      .where(eq(webhookDeliveries.id, id));
    return c.json(await deliverNow(c.env, hook, id));
  })
  .post("/:id/ping", async (c) => {
    const project = c.get("project");
    requireProjectAdmin(project);
    const hook = await requireWebhook(c.env, project, c.req.param("id"));
    requireEnabled(hook);
    const now = Date.now();
    const [row] = await drizzle(c.env.DB)
      .insert(webhookDeliveries)
      .values({
        webhookId: hook.id,
        eventId: null,
        eventKey: sql`'ping_' || lower(hex(randomblob(12)))` as unknown as string,
        eventType: PING_EVENT,
        nextAttemptAt: now,
        retryUntil: now + RETRY_WINDOW_MS,
      })
      .returning({ id: webhookDeliveries.id });
    return c.json(await deliverNow(c.env, hook, row!.id));
  });
