/**
 * @module
 * Worker entrypoint: the HTTPS API, the cron, and the Durable Object classes it binds.
 */
import { pokeOverdue } from "../durable-objects/webhook-deliveries.ts";
import { app } from "./app.ts";
import type { Env } from "./env.ts";

export { GatewayObject } from "../durable-objects/gateway-object.ts";
export { WebhookDispatcher } from "../durable-objects/webhook-dispatcher.ts";

export default {
  fetch: app.fetch,
  // Every minute: wake webhook dispatchers whose poke was lost (a lost poke only delays a delivery).
  async scheduled(_controller, env) {
    await pokeOverdue(env);
  },
} satisfies ExportedHandler<Env>;
