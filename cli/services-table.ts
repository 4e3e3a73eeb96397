/**
 * @module
 * The services table (`service list|get`, `apply` of a service) and a service's replicas table
 * (`service replica list`). CONFIG tells whether the gateway actually serves the service's
 * current state: `v<config_version>` plus how the gateway replicas' agents took that version.
 * REPLICAS counts the registered endpoints, as `registered/desired` for autoscaled services.
 */

import type { Service } from "../schema/service-api.ts";
import { formatAge } from "./age.ts";
import { DEFAULT_TRAFFIC_WINDOW, TRAFFIC_COLUMNS, type TrafficWindowName, trafficCells } from "./service-traffic.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

export interface ServicesTableOptions {
  /**
   * Adds MODEL and CREATED; TTFT P90 and TOK/S OUT once a service's traffic is reported; SCALING
   * (the autoscaler's reason) when a service autoscales.
   */
  verbose?: boolean;
  /** The traffic window of the verbose columns (60 s by default). */
  window?: TrafficWindowName;
  now: number;
}

export function servicesTable(services: readonly Service[], options: ServicesTableOptions, style: Style): string[] {
  const header = ["NAME", "GATEWAY", "URL", "REPLICAS", "CONFIG"];
  const scaling = options.verbose && services.some((s) => s.scaling?.reason);
  const traffic = options.verbose && services.some((s) => s.traffic);
  if (options.verbose) header.push("MODEL", "CREATED");
  if (traffic) header.push(...TRAFFIC_COLUMNS);
  if (scaling) header.push("SCALING");
  const rows = services.map((service) => {
    const cells = [service.name, service.gateway, service.url, replicaCount(service), configState(service)];
    if (options.verbose)
      cells.push(service.configuration.model?.name ?? "", formatAge(service.created_at, options.now));
    if (traffic) cells.push(...trafficCells(service, options.window ?? DEFAULT_TRAFFIC_WINDOW));
    if (scaling) cells.push(service.scaling?.reason ?? "");
    return { cells };
  });
  return renderTable(header, rows, style);
}

/** `2` registered; `0/1` for an autoscaled service: registered / what the autoscaler wants. */
export function replicaCount(service: Pick<Service, "replicas" | "scaling">): string {
  const registered = String(service.replicas.length);
  const desired = service.scaling?.desired_replicas;
  return desired === null || desired === undefined ? registered : `${registered}/${desired}`;
}

/**
 * `v7 applied` when every gateway replica runs version 7 (or later), `v7 pending (1/2)` while some
 * have yet to (in sync / all), `v7 rejected: <error>` when any refused it, which matters most.
 * A gateway without replicas serves nothing, so its services are pending, not applied.
 */
export function configState(service: Pick<Service, "config_version" | "gateway_replicas">): string {
  const version = `v${service.config_version}`;
  const replicas = [...service.gateway_replicas].sort((a, b) => a.replica_num - b.replica_num);
  const rejected = replicas.find((r) => r.state === "rejected");
  if (rejected) return `${version} rejected${rejected.error ? `: ${oneLine(rejected.error)}` : ""}`;
  const inSync = replicas.filter((r) => r.state === "in_sync").length;
  if (replicas.length > 0 && inSync === replicas.length) return `${version} applied`;
  return `${version} pending (${inSync}/${replicas.length})`;
}

export function replicasTable(service: Pick<Service, "replicas">, now: number, style: Style): string[] {
  // The role column only when some replica has one (prefill/decode disaggregation).
  const roles = service.replicas.some((r) => r.role);
  const rows = service.replicas.map((r) => ({
    cells: [
      r.id,
      r.url,
      ...(roles ? [r.role ? `${r.role}${r.bootstrap_port ? ` (bootstrap ${r.bootstrap_port})` : ""}` : "-"] : []),
      formatAge(r.registered_at, now),
    ],
  }));
  return renderTable(["ID", "URL", ...(roles ? ["ROLE"] : []), "REGISTERED"], rows, style);
}

/** An agent's error may span lines (a parser's report); a table cell may not. */
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim();
