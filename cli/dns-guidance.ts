/**
 * @module
 * What to tell the user about DNS once a gateway has an address: the wildcard record to create,
 * as the API computed it (`dns_records`), with a CNAME hint for DNS names.
 */
import type { Gateway } from "../schema/api.ts";

export function dnsGuidance(gateway: Gateway): string[] {
  const records = gateway.dns_records ?? [];
  if (records.length === 0 || gateway.to_be_deleted) return [];
  const width = Math.max(...records.map((r) => r.name.length));
  const lines = [
    records.length === 1
      ? "To reach services on this gateway, create this DNS record:"
      : "To reach services on this gateway, create these DNS records:",
    ...records.map((r) => `  ${r.name.padEnd(width)}  ${r.type.padEnd(5)}  ${r.value}`),
  ];
  const cnames = records.filter((r) => r.type === "CNAME");
  if (cnames.length === 1) {
    lines.push("The address is a DNS name (a load balancer): create a CNAME record, not an A record.");
  } else if (cnames.length > 1) {
    lines.push(
      "A name can carry only one CNAME: point it at one replica, or put a load balancer in front of the replicas.",
    );
  }
  return lines;
}
