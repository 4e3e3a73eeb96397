/**
 * @module
 * A gateway's services: apply (create or update against the client's plan), delete, register and
 * unregister replicas, and the API views. Every change is a new configuration version pushed to the
 * agents in the same step, and written through to D1.
 */

import { failure, type Outcome, ok } from "../core/outcome.ts";
import { decideServiceApply, type ServiceHost, serviceHostRefusal, serviceHttpsRefusal } from "../schema/plan.ts";
import type { PlannedResource } from "../schema/plan-envelope.ts";
import type { ServiceConfiguration } from "../schema/service.ts";
import type { Service } from "../schema/service-api.ts";
import { broadcastConfig } from "./agent-socket.ts";
import { dropService, storeService, touchService } from "./config-changes.ts";
import { entryBytes, serviceEntry } from "./config-document.ts";
import { gatewayDomain } from "./config-service.ts";
import type { GatewayContext } from "./gateway-context.ts";
import { evaluateService } from "./scaling.ts";
import { scheduleScaling } from "./scaling-schedule.ts";
import { documentSizeRefusal, replicaLimitRefusal, serviceCountRefusal } from "./service-limits.ts";
import type { ReplicaRegistration } from "./service-store.ts";
import { serviceView } from "./service-view.ts";
import type { GatewayRow } from "./state.ts";

export interface ServiceApplyInput {
  configuration: ServiceConfiguration;
  configurationPath: string | null;
  currentResource: PlannedResource;
  force: boolean;
  actor: string;
}

export function listServices(gw: GatewayContext): Service[] {
  const g = gw.state.gateway();
  if (!g) return [];
  const replicas = gw.state.replicas();
  return gw.services.list().map((s) => serviceView(g, s, gw.services, replicas));
}

/** The named services that exist, in the order given: a page of a list costs its page, not the gateway. */
export function servicesNamed(gw: GatewayContext, names: readonly string[]): Service[] {
  const g = gw.state.gateway();
  if (!g) return [];
  const replicas = gw.state.replicas();
  return names.flatMap((name) => {
    const s = gw.services.get(name);
    return s ? [serviceView(g, s, gw.services, replicas)] : [];
  });
}

export function getService(gw: GatewayContext, name: string): Service | null {
  const g = gw.state.gateway();
  const s = gw.services.get(name);
  return g && s ? serviceView(g, s, gw.services, gw.state.replicas()) : null;
}

/** A gateway takes no service change while it is being deleted, has failed, or has no domain. */
/** What the service rules (`schema/plan.ts`) need of the gateway. */
const serviceHost = (g: GatewayRow): ServiceHost => ({
  name: g.name,
  status: g.status,
  to_be_deleted: g.to_be_deleted,
  domain: gatewayDomain(g),
  certificate: g.configuration.certificate,
});

/** A gateway being deleted, FAILED or without a domain takes no service change. */
const refuseServices = (g: GatewayRow) => serviceHostRefusal(serviceHost(g));

export async function applyService(
  gw: GatewayContext,
  input: ServiceApplyInput,
): Promise<Outcome<{ service: Service; created: boolean }>> {
  const g = gw.state.gateway();
  if (!g) return failure("not_found", "not_found", "Gateway does not exist");
  const refusal = refuseServices(g);
  if (refusal) return refusal;
  const c = input.configuration;
  const https = serviceHttpsRefusal(serviceHost(g), c.https);
  if (https) return https;
  const current = gw.services.get(c.name);
  const decision = decideServiceApply(current ?? null, input);
  if (!decision.ok) return decision;
  if (current && decision.value === "unchanged") {
    return ok({ service: serviceView(g, current, gw.services, gw.state.replicas()), created: false });
  }
  if (!current) {
    const limit = serviceCountRefusal(gw.services.totals().count);
    if (limit) return limit;
  }
  const now = new Date().toISOString();
  const draft = {
    name: c.name,
    id: current?.id ?? crypto.randomUUID(),
    configuration: c,
    configuration_path: input.configurationPath,
    created_at: current?.created_at ?? now,
    updated_at: now,
  };
  const size = documentSizeRefusal(
    gw.services.totals().bytes,
    current?.doc_bytes ?? 0,
    entryBytes(serviceEntry(g, gw.services, { ...draft, config_version: 0 })),
  );
  if (size) return size;
  const row = storeService(gw, g, draft);
  // A new range or target takes effect now, not at the next stats report.
  const running = gw.state.replicas().filter((r) => r.status === "running");
  evaluateService(gw.state, gw.services, row, running, { now: Date.now(), force: true });
  if (current) gw.state.event(`Service ${c.name} updated`, input.actor);
  else
    gw.state.event(`Service ${c.name} created`, input.actor, {
      type: "service.registered",
      data: { service: c.name },
    });
  broadcastConfig(gw);
  await scheduleScaling(gw);
  await gw.flush();
  return ok({ service: serviceView(g, row, gw.services, gw.state.replicas()), created: !current });
}

export async function deleteService(gw: GatewayContext, name: string, actor: string): Promise<Outcome<Service>> {
  const g = gw.state.gateway();
  const s = gw.services.get(name);
  if (!g || !s) return failure("not_found", "not_found", `Service ${name} does not exist`);
  const view = serviceView(g, s, gw.services, gw.state.replicas());
  dropService(gw, g, name);
  gw.state.event(`Service ${name} deleted`, actor, { type: "service.unregistered", data: { service: name } });
  broadcastConfig(gw);
  await gw.flush();
  return ok(view);
}

export async function putServiceReplica(
  gw: GatewayContext,
  name: string,
  replica: ReplicaRegistration,
  actor: string,
): Promise<Outcome<{ service: Service; created: boolean }>> {
  const g = gw.state.gateway();
  const s = gw.services.get(name);
  if (!g || !s) return failure("not_found", "not_found", `Service ${name} does not exist`);
  const refusal = refuseServices(g);
  if (refusal) return refusal;
  const limit = replicaLimitRefusal({
    service: name,
    count: gw.services.replicaCount(name),
    exists: gw.services.hasReplica(name, replica.id),
    totalBytes: gw.services.totals().bytes,
    entryBytes: s.doc_bytes ?? 0,
    replica,
  });
  if (limit) return limit;
  const change = gw.services.putReplica(name, replica);
  if (change !== "unchanged") {
    touchService(gw, g, name);
    gw.state.event(`Service ${name} replica ${replica.id} ${change === "created" ? "registered" : "updated"}`, actor, {
      type: "service.replica.registered",
      data: {
        service: name,
        replica_id: replica.id,
        url: replica.url,
        ...(replica.role ? { role: replica.role } : {}),
        ...(replica.bootstrap_port != null ? { bootstrap_port: replica.bootstrap_port } : {}),
      },
    });
    broadcastConfig(gw);
    await gw.flush();
  }
  const view = serviceView(g, gw.services.get(name)!, gw.services, gw.state.replicas());
  return ok({ service: view, created: change === "created" });
}

export async function removeServiceReplica(
  gw: GatewayContext,
  name: string,
  id: string,
  actor: string,
): Promise<Outcome<Service>> {
  const g = gw.state.gateway();
  if (!g || !gw.services.get(name)) return failure("not_found", "not_found", `Service ${name} does not exist`);
  if (!gw.services.removeReplica(name, id)) {
    return failure("not_found", "not_found", `Service ${name} has no replica ${id}`);
  }
  touchService(gw, g, name);
  gw.state.event(`Service ${name} replica ${id} unregistered`, actor, {
    type: "service.replica.unregistered",
    data: { service: name, replica_id: id },
  });
  broadcastConfig(gw);
  await gw.flush();
  return ok(serviceView(g, gw.services.get(name)!, gw.services, gw.state.replicas()));
}
