/**
 * @module
 * What a gateway's document takes from its project, re-read from D1 when the project changes it
 * (and when the gateway is created): the service tokens and the ACME settings. A change is a new
 * configuration version pushed to the agents, which is how revocation reaches the gateways without
 * any per-request call.
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { serviceTokens } from "../core/db/schema.ts";
import { sameJson } from "../schema/json.ts";
import { broadcastConfig } from "./agent-socket.ts";
import { bumpConfig, type GatewayContext } from "./gateway-context.ts";
import { documentAcme, openProjectAcme, readProjectAcmeRow } from "./project-acme.ts";

/** The project's unrevoked service tokens (after one is created or revoked). */
export async function refreshServiceTokens(gw: GatewayContext): Promise<void> {
  const g = gw.state.gateway();
  if (!g || g.to_be_deleted) return;
  const rows = await drizzle(gw.env.DB)
    .select({ id: serviceTokens.id, secret_sha256: serviceTokens.secretHash })
    .from(serviceTokens)
    .where(and(eq(serviceTokens.projectId, g.project_id), isNull(serviceTokens.revokedAt)));
  const fresh = gw.state.gateway();
  if (!fresh || !gw.services.replaceServiceTokens(rows)) return;
  bumpConfig(gw, fresh, "head");
  broadcastConfig(gw);
  await gw.flush();
}

/** The project's ACME settings (after `PUT/DELETE /projects/:p/acme`): a new version if the document's `acme` changed. */
export async function refreshProjectAcme(gw: GatewayContext): Promise<void> {
  const g = gw.state.gateway();
  if (!g || g.to_be_deleted) return;
  const sealed = await readProjectAcmeRow(gw.env, g.project_id);
  const settings = await openProjectAcme(gw.env, g.project_id, sealed);
  const fresh = gw.state.gateway();
  if (!fresh) return;
  const before = documentAcme(fresh, gw.projectAcme);
  gw.acmeStore.put(sealed);
  gw.projectAcme = settings;
  if (sameJson(before, documentAcme(fresh, settings))) return;
  bumpConfig(gw, fresh, "head");
  broadcastConfig(gw);
  await gw.flush();
}
