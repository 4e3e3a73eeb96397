/**
 * @module
 * What the modules behind a GatewayObject's methods share: its storage (gateway, services, the
 * project's ACME copy, DNS automation), its bindings, the catalog write-through, and the two steps
 * every command ends with (bump the document's version, run the reconciler soon). The object builds
 * one context when it wakes and hands it to each module; no module holds state of its own.
 */

import type { Env } from "../core/env.ts";
import type { ProjectAcmeSettings } from "../schema/acme.ts";
import type { ChangeLog } from "./change-log.ts";
import type { DnsAutomation } from "./dns/dns-sync.ts";
import type { ProjectAcmeStore } from "./project-acme.ts";
import type { ServiceHistory } from "./service-history.ts";
import type { ServiceStore } from "./service-store.ts";
import type { GatewayRow, GatewayState } from "./state.ts";

export interface GatewayContext {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  readonly state: GatewayState;
  readonly services: ServiceStore;
  /** Tombstones of removed services and the services the D1 catalog is behind on (`change-log.ts`). */
  readonly changes: ChangeLog;
  readonly acmeStore: ProjectAcmeStore;
  readonly dns: DnsAutomation;
  /** Per-service 1-minute rollups of the agents' reports, 24 hours (`service-history.ts`). */
  readonly history: ServiceHistory;
  /** The project's ACME settings, opened from the sealed copy when the object wakes. */
  projectAcme: ProjectAcmeSettings | null;
  /** Writes the catalog through to D1 (`write-through.ts`); returns when to retry if it failed. */
  flush(): Promise<number | null>;
}

/**
 * Creates every table of the object, in one place: when it wakes, and after a deletion wiped its
 * storage (the object lives on, and the name can be used for a new gateway at once).
 */
export function migrateStorage(gw: GatewayContext): void {
  gw.state.migrate();
  gw.acmeStore.migrate();
  gw.dns.migrate();
  gw.history.migrate();
}

/** Runs the reconciler as soon as possible (alarms are the only place that calls clouds). */
export async function kick(gw: GatewayContext): Promise<void> {
  const current = await gw.ctx.storage.getAlarm();
  const now = Date.now();
  if (current === null || current > now) await gw.ctx.storage.setAlarm(now);
}

/**
 * What a new configuration version changed, which decides what a delta carries
 * (docs/configuration-delivery.md): `service`, one service (the caller stamps its row with the
 * version, or tombstones it); `head`, the document's envelope (service tokens, ACME, observability);
 * `every_service`, something every entry is derived from (the gateway's domain): agents below it
 * get a whole document.
 */
export type ConfigChange = "service" | "head" | "every_service";

/** Bumps the configuration version (in the same synchronous step as the change it covers). */
export function bumpConfig(gw: GatewayContext, g: GatewayRow, change: ConfigChange = "service"): number {
  const version = g.config_version + 1;
  const marks =
    change === "service"
      ? {}
      : change === "head"
        ? { head_version: version }
        : { head_version: version, full_version: version };
  gw.state.updateGateway({ config_version: version, ...marks });
  Object.assign(g, { config_version: version, ...marks });
  return version;
}
