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
import { DNS_CREDENTIALS, DnsProviderParam, dnsCredentialType } from "../../schema/dns-automation.ts";
import { parseOrThrow } from "../../schema/issues.ts";
import { type AppEnv, requireProjectAdmin } from "../auth.ts";
import { sealJson } from "../crypto.ts";
import { backendCredentials } from "../db/schema.ts";
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
    const type = dnsCredentialType(provider);
    const sealed = await sealJson(c.env.CREDENTIALS_KEY, credentials, `${p.id}/${type}`);
    const now = new Date().toISOString();
    await drizzle(c.env.DB)
      .insert(backendCredentials)
      .values({ projectId: p.id, type, ...sealed, updatedAt: now })
      .onConflictDoUpdate({
        target: [backendCredentials.projectId, backendCredentials.type],
        set: { ...sealed, updatedAt: now },
      });
    return c.json({ provider, configured: true, updated_at: now });
  })
  .delete("/:provider", async (c) => {
    const p = c.get("project");
    requireProjectAdmin(p);
    const type = dnsCredentialType(providerParam(c.req.param("provider")));
    await drizzle(c.env.DB)
      .delete(backendCredentials)
      .where(and(eq(backendCredentials.projectId, p.id), eq(backendCredentials.type, type)));
    return c.body(null, 204);
  });
