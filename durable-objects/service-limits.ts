/**
 * @module
 * The limits a service change is checked against where the API accepts it (`schema/limits.ts`):
 * services per gateway, replicas per service, the configuration document's size. Pure: the caller
 * reads the running totals and indexed counts (O(1)); a refusal names the field and changes nothing.
 */
import { failure } from "../core/outcome.ts";
import { MAX_CONFIG_DOCUMENT_BYTES, MAX_SERVICE_REPLICAS, MAX_SERVICES_PER_GATEWAY } from "../schema/limits.ts";

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

/** What a replica registration is checked against: the service's replicas and the document's size. */
export interface ReplicaLimitInput {
  service: string;
  /** Replicas registered now, and whether this id is one of them (re-registering is not a new one). */
  count: number;
  exists: boolean;
  /** The document's services' bytes, and the service entry's. */
  totalBytes: number;
  entryBytes: number;
  replica: { id: string; url: string };
}

/** A replica registered on a service: the replicas per service, and the document's size. */
export function replicaLimitRefusal(input: ReplicaLimitInput) {
  if (input.count >= MAX_SERVICE_REPLICAS && !input.exists) {
    return failure(
      "invalid",
      "limit_exceeded",
      `Service ${input.service} already has ${input.count} replicas registered, the most a service takes (${MAX_SERVICE_REPLICAS})`,
      "id",
    );
  }
  // The entry grows by about this replica's JSON (an update replaces one of about the same size).
  const growth = JSON.stringify(input.replica).length + 1;
  return documentSizeRefusal(input.totalBytes, input.entryBytes, input.entryBytes + growth, "url");
}
