/**
 * @module
 * The DNS record a gateway's users must create so that `<service>.<domain>` reaches it: the
 * wildcard `*.<domain>` pointing at the gateway's address: an A (or AAAA) record for an IP, a CNAME
 * for a DNS name (Kubernetes and cloud load balancers). Computed from the load balancer's hostname
 * when there is one, else from the replicas'; shared by the API view and the CLI.
 */

import * as v from "valibot";
import { isIPv4, isIPv6 } from "./net-address.ts";

export const DnsRecordSchema = v.object({
  /** `*.<domain>` */
  name: v.string(),
  type: v.picklist(["A", "AAAA", "CNAME"]),
  value: v.string(),
});
export type DnsRecord = v.InferOutput<typeof DnsRecordSchema>;

/** `host:port` (local hosts), `[v6]:port`, or a bare address → the address DNS can point at. */
function addressOf(hostname: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostname);
  if (bracketed) return bracketed[1]!;
  const withPort = /^([^:]+):\d+$/.exec(hostname);
  return withPort ? withPort[1]! : hostname;
}

/**
 * The records to create, one per distinct address (several A records share the name for
 * round-robin; a name can carry only one CNAME, so several DNS names need a load balancer in
 * front, which the CLI says). None while no address is known, and none for `localhost` domains,
 * which resolve to the loopback address without any record (RFC 6761).
 */
export function dnsRecords(domain: string | null | undefined, hostnames: readonly (string | null)[]): DnsRecord[] {
  if (!domain || domain === "localhost" || domain.endsWith(".localhost")) return [];
  const name = `*.${domain}`;
  const seen = new Set<string>();
  const records: DnsRecord[] = [];
  for (const hostname of hostnames) {
    if (!hostname) continue;
    const value = addressOf(hostname);
    if (seen.has(value)) continue;
    seen.add(value);
    records.push({ name, type: isIPv4(value) ? "A" : isIPv6(value) ? "AAAA" : "CNAME", value });
  }
  return records;
}
