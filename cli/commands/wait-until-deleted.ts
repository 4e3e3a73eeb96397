/**
 * @module
 * Deletion is asynchronous (the control plane tears the hosts down first); re-creating a gateway
 * under the same name has to wait until the old one is gone.
 */
import type { Context } from "../context.ts";
import { ApiError } from "../errors.ts";

const POLL_DELETION_MS = 1000;

export async function waitUntilDeleted(ctx: Context, project: string, name: string): Promise<void> {
  for (;;) {
    try {
      await ctx.api().get(project, name);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return;
      throw e;
    }
    await ctx.io.sleep(POLL_DELETION_MS);
  }
}
