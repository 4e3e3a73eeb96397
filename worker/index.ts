/**
 * @module
 * Worker entrypoint: the HTTPS API, the cron, and the Durable Object classes it binds. The only module
 * that knows the object classes: it exports them to workerd and registers them as the types of the
 * namespaces in `core/env.ts`, so no other module of the Worker imports `durable-objects/`.
 */
import type { Env } from "../core/env.ts";
import { pokeOverdue } from "../core/webhook-deliveries.ts";
import type { GatewayObject } from "../durable-objects/gateway-object.ts";
import type { WebhookDispatcher } from "../durable-objects/webhook-dispatcher.ts";
import { app } from "./app.ts";

export { GatewayObject } from "../durable-objects/gateway-object.ts";
export { WebhookDispatcher } from "../durable-objects/webhook-dispatcher.ts";

declare module "../core/env.ts" {
  interface ObjectClasses {
    GATEWAYS: GatewayObject;
    WEBHOOKS: WebhookDispatcher;
  }
}

export default {
  fetch: app.fetch,
  // Every minute: wake webhook dispatchers whose poke was lost (a lost poke only delays a delivery).
  async scheduled(_controller, env) {
    await pokeOverdue(env);
  },
} satisfies ExportedHandler<Env>;
