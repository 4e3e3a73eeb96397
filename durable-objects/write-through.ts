/**
 * @module
 * When a GatewayObject writes its catalog through to D1 (`catalog-sync.ts` is what it writes):
 * one write at a time, the webhook dispatchers poked after each commit, and a back-off when D1
 * refuses (the alarm retries at the returned time).
 */
import type { Env } from "../core/env.ts";
import { pokeDispatchers } from "../core/webhook-deliveries.ts";
import { syncCatalog } from "./catalog-sync.ts";
import type { ChangeLog } from "./change-log.ts";
import type { ServiceStore } from "./service-store.ts";
import type { GatewayState } from "./state.ts";

const SYNC_RETRY_MAX_MS = 5 * 60_000;
/** D1 batches one flush may write (500 service rows each: `catalog-sync.ts`). */
const MAX_BATCHES_PER_FLUSH = 60;

export class CatalogWriteThrough {
  private flushing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly env: Env,
    private readonly state: GatewayState,
    private readonly services: ServiceStore,
    private readonly changes: ChangeLog,
    private readonly objectId: string,
  ) {}

  /**
   * Writes the catalog through to D1; returns when to retry if it failed. Flushes run one at a
   * time: two interleaved across their awaits could commit an older snapshot after a newer one.
   */
  flush(): Promise<number | null> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => null);
    return run;
  }

  private async flushOnce(): Promise<number | null> {
    const g = this.state.gateway();
    if (!g) return null;
    try {
      const fed = await syncCatalog(this.env.DB, this.state, this.services, this.changes, this.objectId);
      // More services marked than one batch takes (once, for a gateway from before the marks):
      // the following batches now, not at the next alarm.
      for (let batches = 1; batches < MAX_BATCHES_PER_FLUSH && this.changes.hasDirty(); batches++)
        fed.push(...(await syncCatalog(this.env.DB, this.state, this.services, this.changes, this.objectId)));
      await pokeDispatchers(this.env, [...new Set(fed)]);
      const after = this.state.gateway();
      // More to write (a change meanwhile, or more dirty services than one batch takes): soon again.
      if (after && (after.version > after.synced_version || after.default_intent || this.changes.hasDirty()))
        return Date.now() + 50;
      return null;
    } catch (e) {
      console.error("catalog write-through failed", e);
      const attempt = g.sync_attempt + 1;
      const retryAt = Date.now() + Math.min(2_000 * 2 ** (attempt - 1), SYNC_RETRY_MAX_MS);
      this.state.setSyncState({ sync_attempt: attempt, next_sync_at: retryAt });
      return retryAt;
    }
  }
}
