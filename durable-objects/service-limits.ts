/**
 * @module
 * The limits a service change is checked against where the API accepts it (`schema/limits.ts`):
 * services per gateway, replicas per service, the configuration document's size. Each check is
 * O(1) (running totals and indexed counts); a refusal names the field and changes nothing.
 */
import { failure } from "../core/outcome.ts";
import { MAX_CONFIG_DOCUMENT_BYTES, MAX_SERVICE_REPLICAS, MAX_SERVICES_PER_GATEWAY } from "../schema/limits.ts";
import type { GatewayContext } from "./gateway-context.ts";
import type { ReplicaRegistration, ServiceRow } from "./service-store.ts";

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** A new service on a gateway that already has `count`. */
export function serviceCountRefusal(count: number) {
  if (count < MAX_SERVICES_PER_GATEWAY) return null;
  return failure(
    "invalid",
    "limit_exceeded",
    `The gateway already has ${count} services, the most one gateway takes (${MAX_SERVICES_PER_GATEWAY}): delete a service or put this one on another gateway`,
    "gateway",
  );
}

/** The document's services total `total` bytes; one entry goes from `before` to `after` bytes. */
export function documentSizeRefusal(total: number, before: number, after: number, field = "configuration") {
  const next = total - before + after;
  if (next <= MAX_CONFIG_DOCUMENT_BYTES) return null;
  return failure(
    "invalid",
    "limit_exceeded",
    `This change would make the gateway's configuration document ${mib(next)}, over its limit of ${mib(MAX_CONFIG_DOCUMENT_BYTES)}`,
    field,
  );
}

/** A replica registered on `s`: the replicas per service, and the document's size. */
export function replicaLimitRefusal(gw: GatewayContext, s: ServiceRow, replica: ReplicaRegistration) {
  const count = gw.services.replicaCount(s.name);
  if (count >= MAX_SERVICE_REPLICAS && !gw.services.hasReplica(s.name, replica.id)) {
    return failure(
      "invalid",
      "limit_exceeded",
      `Service ${s.name} already has ${count} replicas registered, the most a service takes (${MAX_SERVICE_REPLICAS})`,
      "id",
    );
  }
  // The entry grows by about this replica's JSON (an update replaces one of the same size or so).
  const growth = JSON.stringify(replica).length + 1;
  const before = s.doc_bytes ?? 0;
  return documentSizeRefusal(gw.services.totals().bytes, before, before + growth, "url");
}
