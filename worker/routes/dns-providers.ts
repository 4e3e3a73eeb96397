/**
 * @module
 * `/api/v1/projects/:project/dns/:provider`: the credentials of the DNS provider that creates the
 * project's gateways' wildcard records (optional; without them the API only says which records to
 * create). Admins only; stored encrypted next to the backends' credentials.
 */
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import * as v from "valibot";
import { backendCredentials } from "../../core/db/schema.ts";
import { removeSealed, storeSealed } from "../../core/db/sealed-settings.ts";
import { DNS_CREDENTIALS, DnsProviderParam, dnsCredentialType } from "../../schema/dns-automation.ts";
import { parseOrThrow } from "../../schema/issues.ts";
import { type AppEnv, requireProjectAdmin } from "../auth.ts";
import { readJson } from "../http.ts";

const providerParam = (value: string) =>
  parseOrThrow(v.object({ provider: DnsProviderParam }), { provider: value }).provider;

export const dnsProviders = new Hono<AppEnv>()
  .get("/:provider", async (c) => {
    const provider = providerParam(c.req.param("provider"));
    const row = await drizzle(c.env.DB)
      .select({ updatedAt: backendCredentials.updatedAt })
      .from(backendCredentials)
      .where(
        and(
          eq(backendCredentials.projectId, c.get("project").id),
          eq(backendCredentials.type, dnsCredentialType(provider)),
        ),
      )
      .get();
    return c.json({ provider, configured: row !== undefined, updated_at: row?.updatedAt ?? null });
  })
  .put("/:provider", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const provider = providerParam(c.req.param("provider"));
    const credentials = await readJson(c, DNS_CREDENTIALS[provider]);
    const now = await storeSealed(c.env, p.id, dnsCredentialType(provider), credentials);
    return c.json({ provider, configured: true, updated_at: now });
  })
  .delete("/:provider", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    await removeSealed(c.env, p.id, dnsCredentialType(providerParam(c.req.param("provider"))));
    return c.body(null, 204);
  });
