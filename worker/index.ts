/**
 * @module
 * Worker entrypoint: the HTTPS API and the Durable Object classes it binds.
 */
import { app } from "./app.ts";
import type { Env } from "./env.ts";

export { GatewayObject } from "../durable-objects/gateway-object.ts";

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
