/**
 * @module
 * WebhookDispatcher: one Durable Object per webhook endpoint (`idFromName(webhookId)`), the only
 * sender of that endpoint's deliveries. D1 holds the deliveries; the object's alarm attempts the
 * due ones oldest first, one at a time (so first attempts of one gateway's events arrive in
 * sequence order), and re-arms itself for the earliest pending one. Each attempt's outcome is
 * written to D1 before the next starts, so a crash repeats at most the attempt in flight — which
 * receivers absorb with the idempotency key.
 */
import { DurableObject } from "cloudflare:workers";
import { secretAad } from "../core/aad.ts";
import { openJson } from "../core/crypto.ts";
import { prepare } from "../core/db/statements.ts";
import type { Env } from "../core/env.ts";
import {
  backoffMs,
  DISABLE_AFTER_MS,
  deliveryInserts,
  fedWebhooks,
  pokeDispatchers,
} from "../core/webhook-deliveries.ts";
import type { WebhookPayload } from "../schema/webhooks.ts";
import { PING_EVENT } from "../schema/webhooks.ts";
import { signatureHeader } from "./webhook-signature.ts";

/** Deliveries attempted per alarm run; the alarm re-arms at once when more are due. */
const BATCH = 20;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
const EXCERPT_CHARS = 512;
const USER_AGENT = "Gateplane-Webhooks/1";

interface WebhookRow {
  id: string;
  project_id: string;
  project_name: string;
  url: string;
  enabled: number;
  secret_ciphertext: string;
  secret_iv: string;
  previous_secret_ciphertext: string | null;
  previous_secret_iv: string | null;
  previous_secret_expires_at: string | null;
}

interface DueRow {
  id: number;
  event_key: string;
  event_type: string;
  attempts: number;
  retry_until: number;
  created_at: string;
  event_created_at: string | null;
  gateway_name: string | null;
  sequence: number | null;
  data: string | null;
}

type Outcome =
  | { ok: true; status: number; excerpt: string }
  | { ok: false; status: number | null; error: string; excerpt: string | null };

/** Checked when the object starts: a bad setting fails loudly instead of aborting every attempt. */
function attemptTimeoutMs(setting: string | undefined): number {
  if (setting === undefined || setting === "") return DEFAULT_ATTEMPT_TIMEOUT_MS;
  const ms = Number(setting);
  if (!Number.isInteger(ms) || ms < 100 || ms > 60_000) {
    throw new Error(`WEBHOOK_ATTEMPT_TIMEOUT_MS: expected milliseconds between 100 and 60000, got "${setting}"`);
  }
  return ms;
}

export class WebhookDispatcher extends DurableObject<Env> {
  /** Deliveries being attempted by this instance: an RPC and the alarm never send the same one twice at once. */
  private readonly inFlight = new Set<number>();
  private readonly timeoutMs: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.timeoutMs = attemptTimeoutMs(env.WEBHOOK_ATTEMPT_TIMEOUT_MS);
  }

  /** Arms the alarm now unless it is already due sooner. */
  async poke(webhookId: string): Promise<void> {
    await this.ctx.storage.put("webhook", webhookId);
    const current = await this.ctx.storage.getAlarm();
    const now = Date.now();
    if (current === null || current > now) await this.ctx.storage.setAlarm(now);
  }

  /** Attempts one delivery at once (ping, redeliver) whatever its schedule; false if the endpoint is gone or disabled. */
  async deliverNow(webhookId: string, deliveryId: number): Promise<boolean> {
    await this.ctx.storage.put("webhook", webhookId);
    const hook = await this.webhook(webhookId);
    if (!hook?.enabled) return false;
    const [row] = await this.due(hook.id, { deliveryId });
    if (row) await this.attempt(hook, row);
    await this.rearm(hook.id);
    return true;
  }

  override async alarm(): Promise<void> {
    const webhookId = await this.ctx.storage.get<string>("webhook");
    if (!webhookId) return;
    const hook = await this.webhook(webhookId);
    if (!hook) {
      // Deleted endpoint: its deliveries went with it (cascade).
      await this.ctx.storage.deleteAll();
      return;
    }
    if (!hook.enabled) return; // Re-enabling pokes again; pending deliveries wait in D1.
    for (const row of await this.due(hook.id, { now: Date.now() })) {
      if ((await this.attempt(hook, row)) === "disabled") return;
    }
    await this.rearm(hook.id);
  }

  private async rearm(webhookId: string): Promise<void> {
    const next = await this.env.DB.prepare(
      "SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries WHERE webhook_id = ? AND state = 'pending'",
    )
      .bind(webhookId)
      .first<{ at: number | null }>();
    if (next?.at == null) return;
    const target = Math.max(next.at, Date.now());
    // A poke that landed while this run awaited D1 may have armed an earlier alarm: keep that one.
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > target) await this.ctx.storage.setAlarm(target);
  }

  private webhook(id: string): Promise<WebhookRow | null> {
    return this.env.DB.prepare(
      `SELECT w.*, p.name AS project_name FROM webhooks w JOIN projects p ON p.id = w.project_id WHERE w.id = ?`,
    )
      .bind(id)
      .first<WebhookRow>();
  }

  private async due(webhookId: string, which: { now: number } | { deliveryId: number }): Promise<DueRow[]> {
    const where = "now" in which ? "d.next_attempt_at <= ?" : "d.id = ?";
    const { results } = await this.env.DB.prepare(
      `SELECT d.id, d.event_key, d.event_type, d.attempts, d.retry_until, d.created_at,
         e.created_at AS event_created_at, e.gateway_name, e.sequence, e.data
       FROM webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id
       WHERE d.webhook_id = ? AND d.state = 'pending' AND ${where} ORDER BY d.id LIMIT ${BATCH}`,
    )
      .bind(webhookId, "now" in which ? which.now : which.deliveryId)
      .all<DueRow>();
    return results.filter((r) => !this.inFlight.has(r.id));
  }

  private async secrets(hook: WebhookRow): Promise<string[]> {
    const key = this.env.CREDENTIALS_KEY;
    const current = (await openJson(
      key,
      { ciphertext: hook.secret_ciphertext, iv: hook.secret_iv },
      secretAad(hook.id),
    )) as string;
    const previousLive =
      hook.previous_secret_ciphertext &&
      hook.previous_secret_iv &&
      hook.previous_secret_expires_at &&
      Date.parse(hook.previous_secret_expires_at) > Date.now();
    if (!previousLive) return [current];
    const previous = (await openJson(
      key,
      { ciphertext: hook.previous_secret_ciphertext!, iv: hook.previous_secret_iv! },
      secretAad(hook.id),
    )) as string;
    return [current, previous];
  }

  private payload(hook: WebhookRow, row: DueRow): WebhookPayload {
    const ping = row.event_type === PING_EVENT;
    return {
      id: row.event_key,
      type: row.event_type,
      created_at: row.event_created_at ?? row.created_at,
      project: hook.project_name,
      gateway: row.gateway_name,
      sequence: row.sequence,
      data: ping ? { webhook_id: hook.id } : row.data === null ? null : JSON.parse(row.data),
    };
  }

  private async attempt(hook: WebhookRow, row: DueRow): Promise<"delivered" | "retry" | "failed" | "disabled"> {
    this.inFlight.add(row.id);
    try {
      const outcome = await this.send(hook, row);
      return await this.record(hook, row, outcome);
    } finally {
      this.inFlight.delete(row.id);
    }
  }

  private async send(hook: WebhookRow, row: DueRow): Promise<Outcome> {
    const body = JSON.stringify(this.payload(hook, row));
    const timestamp = Math.floor(Date.now() / 1000);
    const timeoutMs = this.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const res = await fetch(hook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": USER_AGENT,
          "gateplane-event-id": row.event_key,
          "gateplane-event-type": row.event_type,
          "gateplane-signature": await signatureHeader(await this.secrets(hook), timestamp, body),
        },
        body,
        // A redirect is the receiver's mistake to fix, not a reason to send the event elsewhere.
        redirect: "manual",
        signal: timeout,
      });
      const excerpt = await readExcerpt(res);
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, excerpt };
      return { ok: false, status: res.status, error: `HTTP ${res.status}`, excerpt };
    } catch (e) {
      const error = timeout.aborted
        ? `no answer within ${timeoutMs / 1000} s`
        : e instanceof Error
          ? e.message
          : String(e);
      return { ok: false, status: null, error, excerpt: null };
    }
  }

  private async record(
    hook: WebhookRow,
    row: DueRow,
    outcome: Outcome,
  ): Promise<"delivered" | "retry" | "failed" | "disabled"> {
    const nowMs = Date.now();
    const now = new Date(nowMs).toISOString();
    const attempts = row.attempts + 1;
    const db = this.env.DB;
    if (outcome.ok) {
      await db.batch([
        db
          .prepare(
            `UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_attempt_at = ?, last_status = ?,
               last_error = NULL, response_excerpt = ?, delivered_at = ? WHERE id = ?`,
          )
          .bind(attempts, now, outcome.status, outcome.excerpt, now, row.id),
        db
          .prepare(
            "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = ? WHERE id = ?",
          )
          .bind(now, hook.id),
      ]);
      return "delivered";
    }
    const giveUp = nowMs >= row.retry_until;
    const [, health] = await db.batch<{ consecutive_failures: number; failing_since: string }>([
      db
        .prepare(
          `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?,
             last_status = ?, last_error = ?, response_excerpt = ? WHERE id = ?`,
        )
        .bind(
          giveUp ? "failed" : "pending",
          attempts,
          nowMs + backoffMs(attempts),
          now,
          outcome.status,
          outcome.error,
          outcome.excerpt,
          row.id,
        ),
      db
        .prepare(
          `UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,
             failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING consecutive_failures, failing_since`,
        )
        .bind(now, hook.id),
    ]);
    const state = health?.results[0];
    if (outcome.status === 410) {
      await this.disable(hook, "the endpoint answered 410 Gone");
      return "disabled";
    }
    if (state && nowMs - Date.parse(state.failing_since) >= DISABLE_AFTER_MS) {
      await this.disable(
        hook,
        `every delivery attempt failed for 24 h (${state.consecutive_failures} consecutive failures; last: ${outcome.error})`,
      );
      return "disabled";
    }
    return giveUp ? "failed" : "retry";
  }

  /**
   * Disables the endpoint and records a project-level `webhook.disabled` event, delivered to the
   * project's other endpoints, all in one batch: the event exists exactly when the disabling did.
   */
  private async disable(hook: WebhookRow, reason: string): Promise<void> {
    const now = new Date().toISOString();
    const key = `webhook:${hook.id}:disabled:${now}`;
    const data = JSON.stringify({ webhook_id: hook.id, url: hook.url, reason });
    const db = this.env.DB;
    const results = await db.batch([
      db
        .prepare("UPDATE webhooks SET enabled = 0, disabled_reason = ?, disabled_at = ? WHERE id = ? AND enabled = 1")
        .bind(reason, now, hook.id),
      db
        .prepare(
          `INSERT OR IGNORE INTO events (project_id, actor, message, type, data, source_key)
           SELECT ?, NULL, ?, 'webhook.disabled', ?, ? WHERE EXISTS
             (SELECT 1 FROM webhooks WHERE id = ? AND enabled = 0 AND disabled_at = ?)`,
        )
        .bind(hook.project_id, `Webhook ${hook.url} disabled: ${reason}`, data, key, hook.id, now),
      prepare(db, deliveryInserts([key])),
    ]);
    await pokeDispatchers(this.env, fedWebhooks(results[2]));
  }
}

/** The first characters of a response, without reading an unbounded body. */
async function readExcerpt(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (text.length < EXCERPT_CHARS) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel().catch(() => {});
  return text.slice(0, EXCERPT_CHARS);
}
