/**
 * After each test file: park every gateway and webhook dispatcher it left behind (delete their
 * alarms). The pool shares one runtime and its storage across files (isolatedStorage is off for
 * alarms), so without this a gateway left provisioning keeps polling its fake cloud every 2 s for
 * the rest of the run, work that later files wait behind. No test looks at another file's objects.
 * (Most of the run's old slowdown of later files, 3-20 × their time alone, was the pool's own
 * Proxy build-up: pool-patches.ts.)
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll } from "vitest";

async function park(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, async (_object, state) => {
    await state.storage.deleteAlarm();
  });
}

/** Rows are only added by this file's tests after this: the objects to park are the ones after it. */
let since = { gateways: 0, webhooks: 0 };
const lastRow = async (table: string) =>
  (await env.DB.prepare(`SELECT coalesce(max(rowid), 0) AS n FROM ${table}`).first<{ n: number }>())?.n ?? 0;

beforeAll(async () => {
  since = { gateways: await lastRow("gateways"), webhooks: await lastRow("webhooks") };
});

afterAll(async () => {
  const gateways = await env.DB.prepare("SELECT object_id FROM gateways WHERE rowid > ?")
    .bind(since.gateways)
    .all<{ object_id: string }>();
  const webhooks = await env.DB.prepare("SELECT id FROM webhooks WHERE rowid > ?")
    .bind(since.webhooks)
    .all<{ id: string }>();
  await Promise.allSettled([
    ...gateways.results.map((g) => park(env.GATEWAYS.get(env.GATEWAYS.idFromString(g.object_id)))),
    ...webhooks.results.map((w) => park(env.WEBHOOKS.get(env.WEBHOOKS.idFromName(w.id)))),
  ]);
});
