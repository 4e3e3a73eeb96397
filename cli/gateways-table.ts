/**
 * @module
 * The gateways table shared by `apply`, `gateway list|get|delete|update` (dstack's
 * `get_gateways_table`, with the seed document's column order). A gateway with one replica is one
 * row showing that replica; a gateway with several shows its own row and one row per replica.
 */
import type { Gateway, GatewayReplica } from "../schema/api.ts";
import { formatAge } from "./age.ts";
import type { Style } from "./style.ts";
import { renderTable, type TableRow } from "./text-table.ts";

export interface GatewaysTableOptions {
  /** Adds CREATED and ERROR. */
  verbose?: boolean;
  /** Adds CREATED alone (apply's provisioning display). */
  includeCreated?: boolean;
  now: number;
}

const BASE_COLUMNS = ["BACKEND", "REGION", "NAME", "HOSTNAME", "DOMAIN", "DEFAULT", "STATUS"] as const;

interface Cells {
  backend: string;
  region: string;
  name: string;
  hostname: string;
  domain: string;
  default: string;
  status: string;
  created: string;
  error: string;
}

export function gatewaysTable(gateways: readonly Gateway[], options: GatewaysTableOptions, style: Style): string[] {
  const withCreated = options.verbose === true || options.includeCreated === true;
  const withError = options.verbose === true;
  const header: string[] = [...BASE_COLUMNS];
  if (withCreated) header.push("CREATED");
  if (withError) header.push("ERROR");

  const toRow = (c: Cells, secondary = false): TableRow => {
    const cells = [c.backend, c.region, c.name, c.hostname, c.domain, c.default, c.status];
    if (withCreated) cells.push(c.created);
    if (withError) cells.push(c.error);
    return { cells, secondary };
  };

  const rows: TableRow[] = [];
  for (const gateway of gateways) {
    const own: Cells = {
      backend: gateway.configuration.backend ?? gateway.backend,
      region: gateway.configuration.region ?? gateway.region,
      name: gateway.name,
      hostname: gateway.hostname ?? "",
      domain: gateway.wildcard_domain ?? gateway.configuration.domain ?? "",
      default: gateway.default ? "✓" : "",
      status: gatewayStatus(gateway),
      created: formatAge(gateway.created_at, options.now),
      error: gateway.status_message ?? "",
    };
    const replicas = [...gateway.replicas].sort((a, b) => a.replica_num - b.replica_num);
    const only = replicas.length === 1 ? replicas[0] : undefined;
    // With a load balancer in verbose mode the lone replica gets its own row, so that both the LB's
    // hostname and the instance's stay visible. (Without one, the API's hostname is the replica's.)
    const balancer = gateway.hostname !== null && gateway.hostname !== only?.hostname;
    if (only && !(options.verbose && balancer)) {
      rows.push(
        toRow({
          ...own,
          backend: only.backend,
          region: only.region,
          hostname: gateway.hostname ?? only.hostname ?? "",
          status: gateway.to_be_deleted ? own.status : only.status,
          error: [gateway.status_message, only.status_message].filter(Boolean).join(". "),
        }),
      );
      continue;
    }
    rows.push(toRow(own));
    for (const replica of replicas) rows.push(toRow(replicaCells(replica, options.now), true));
  }
  return renderTable(header, rows, style);
}

function replicaCells(replica: GatewayReplica, now: number): Cells {
  return {
    backend: replica.backend,
    region: replica.region,
    name: `   replica=${replica.replica_num}`,
    hostname: replica.hostname ?? "",
    domain: "",
    default: "",
    status: replica.status,
    created: formatAge(replica.created_at, now),
    error: replica.status_message ?? "",
  };
}

/** Deletion is asynchronous; saying so beats showing a "running" gateway the user just deleted. */
export const gatewayStatus = (gateway: Gateway): string => (gateway.to_be_deleted ? "deleting" : gateway.status);
