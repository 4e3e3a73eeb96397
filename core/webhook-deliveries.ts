/**
 * @module
 * Creating webhook deliveries and waking their dispatchers. Deliveries are inserted by the same D1
 * batch that inserts their events (an `INSERT … SELECT` over the project's enabled, matching
 * endpoints), so a crash can lose neither; the unique (endpoint, event) index makes a repeated
 * write-through add nothing. After the batch commits, the writer pokes the dispatchers it fed; the
 * cron pokes every dispatcher with an overdue delivery, so a lost poke only delays.
 */
import { inArray, sql } from "drizzle-orm";
import { events, webhookDeliveries, webhooks } from "./db/schema.ts";
import type { Env } from "./env.ts";

/** Retries continue for this long after an event's delivery was created (or redelivered). */
export const RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;
/** An endpoint whose every attempt failed for this long is disabled. */
export const DISABLE_AFTER_MS = 24 * 60 * 60 * 1000;
const FIRST_RETRY_MS = 10_000;
const MAX_RETRY_MS = 60 * 60 * 1000;

/** Delay before the attempt after `attempts` failed ones: 10 s, 20 s, 40 s, … capped at 1 h. */
export const backoffMs = (attempts: number): number =>
  Math.min(FIRST_RETRY_MS * 2 ** Math.max(attempts - 1, 0), MAX_RETRY_MS);

/**
 * Deliveries of the events with these source keys to every enabled endpoint of their project whose
 * filter matches (the filter logic of `filterMatches` in `schema/webhooks.ts`). Ordered by event, so
 * delivery ids follow each gateway's sequence. Returns the endpoints it fed (`RETURNING`), which are
 * the dispatchers to poke; repeated keys insert and return nothing.
 */
export function deliveryInserts(sourceKeys: string[], now = Date.now()) {
  return sql`INSERT OR IGNORE INTO ${webhookDeliveries}
      (webhook_id, event_id, event_key, event_type, next_attempt_at, retry_until)
    SELECT ${webhooks.id}, ${events.id}, 'evt_' || ${events.id}, ${events.type}, ${now}, ${now + RETRY_WINDOW_MS}
    FROM ${events} JOIN ${webhooks} ON ${webhooks.projectId} = ${events.projectId} AND ${webhooks.enabled} = 1
    WHERE ${inArray(events.sourceKey, sourceKeys)} AND ${events.type} IS NOT NULL
      AND EXISTS (SELECT 1 FROM json_each(${webhooks.events}) f WHERE f.value = '*' OR f.value = ${events.type}
        OR (f.value LIKE '%.*' AND substr(${events.type}, 1, length(f.value) - 1) = substr(f.value, 1, length(f.value) - 1)))
    ORDER BY ${events.id}, ${webhooks.id}
    RETURNING webhook_id`;
}

/** The endpoints a batch's `deliveryInserts` result fed. */
export function fedWebhooks(result: D1Result | undefined): string[] {
  const rows = (result?.results ?? []) as { webhook_id: string }[];
  return [...new Set(rows.map((r) => r.webhook_id))];
}

/** A webhook endpoint's dispatcher object, named by the endpoint's id. */
export const dispatcherStub = (env: Pick<Env, "WEBHOOKS">, webhookId: string) =>
  env.WEBHOOKS.get(env.WEBHOOKS.idFromName(webhookId));

/** Wakes dispatchers; a failed poke is only logged because the cron pokes again. */
export async function pokeDispatchers(env: Pick<Env, "WEBHOOKS">, webhookIds: string[]): Promise<void> {
  const results = await Promise.allSettled(webhookIds.map((id) => dispatcherStub(env, id).poke(id)));
  for (const r of results) if (r.status === "rejected") console.error("webhook poke failed", r.reason);
}

/** The cron's sweep: every enabled endpoint with a delivery that is due gets poked. */
export async function pokeOverdue(env: Pick<Env, "DB" | "WEBHOOKS">, now = Date.now()): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `SELECT DISTINCT d.webhook_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
     WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND w.enabled = 1 LIMIT 1000`,
  )
    .bind(now)
    .all<{ webhook_id: string }>();
  const ids = results.map((r) => r.webhook_id);
  await pokeDispatchers(env, ids);
  return ids;
}
