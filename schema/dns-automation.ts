/**
 * @module
 * Optional DNS automation: a project that stores a DNS provider's credentials
 * (`PUT /projects/:p/dns/cloudflare`) gets its gateways' wildcard records (`dns_records`) created
 * and removed by the gateways themselves. Stored like backends' credentials (encrypted, in
 * `backend_credentials` under the type `dns:<provider>`).
 */
import * as v from "valibot";
import { mapping } from "./issues.ts";
import { text } from "./text.ts";

export const DNS_PROVIDERS = ["cloudflare"] as const;
export type DnsProvider = (typeof DNS_PROVIDERS)[number];

export const DnsProviderParam = v.picklist(DNS_PROVIDERS, `expected one of ${DNS_PROVIDERS.join(", ")}`);

export const CloudflareDnsCredentials = mapping({
  /** An API token with the Zone › DNS › Edit permission on the zone. */
  api_token: v.pipe(text("expected an API token"), v.minLength(1, "must not be empty")),
  zone_id: v.pipe(v.string("expected a zone id"), v.regex(/^[0-9a-f]{32}$/, "expected a 32-character hex zone id")),
  /** Cloudflare API root (tests); default https://api.cloudflare.com/client/v4. */
  api_endpoint: v.optional(v.pipe(v.string("expected the API URL"), v.url("expected the API URL"))),
});
export type CloudflareDnsCredentials = v.InferOutput<typeof CloudflareDnsCredentials>;

export const DNS_CREDENTIALS = { cloudflare: CloudflareDnsCredentials } as const satisfies Record<
  DnsProvider,
  v.GenericSchema
>;

/** The `backend_credentials.type` a DNS provider's credentials are stored under. */
export const dnsCredentialType = (provider: DnsProvider) => `dns:${provider}`;
