/**
 * @module
 * The gateway's own commands: apply (create, or update in place against the client's plan),
 * re-create, and mark for deletion. Each changes desired state and returns at once; the alarm
 * (`gateway-alarm.ts`) does the cloud work. Refusals are domain outcomes; the Worker picks the status.
 */

import { failure, type Outcome, ok } from "../core/outcome.ts";
import type { Gateway } from "../schema/api.ts";
import { diffConfigurations, type GatewayConfiguration } from "../schema/gateway.ts";
import { servicesRefusal } from "../schema/gateway-deletion.ts";
import { decideGatewayApply } from "../schema/plan.ts";
import type { PlannedResource } from "../schema/plan-envelope.ts";
import { broadcastConfig } from "./agent-socket.ts";
import { type GatewayContext, kick } from "./gateway-context.ts";
import { refreshProjectAcme, refreshServiceTokens } from "./project-refresh.ts";
import type { DefaultIntent, GatewayRow } from "./state.ts";

export interface ApplyInput {
  projectId: string;
  projectName: string;
  /** Validated, with defaults applied and `name` set. */
  configuration: GatewayConfiguration & { name: string };
  configurationPath: string | null;
  /** What the client planned against; `null` when it planned a create. */
  currentResource: PlannedResource;
  force: boolean;
  /** Re-create an existing gateway: delete it, then create this configuration (see `recreate`). */
  recreate: boolean;
  /** The deletion (of a re-create) may take the gateway's services with it. */
  cascade: boolean;
  actor: string;
  controlPlaneUrl: string;
}

type Applied = Outcome<{ gateway: Gateway; created: boolean }>;

export async function applyGateway(gw: GatewayContext, input: ApplyInput): Promise<Applied> {
  const current = gw.state.gateway();
  const next = input.configuration;
  if (!current) return createGateway(gw, input);
  const name = current.name;
  if (current.project_id !== input.projectId) {
    return failure("conflict", "conflict", `Gateway ${name} belongs to another project`);
  }
  const decision = decideGatewayApply(current, input);
  if (!decision.ok) return decision;
  // Re-creating is how a FAILED gateway is replaced: decided before the FAILED check.
  if (decision.value.kind === "recreate") return recreate(gw, current, input);
  const changes = decision.value.changes;
  const fields = changes.map((c) => c.field);
  if (changes.length > 0) {
    const intent: DefaultIntent | null =
      next.default === true ? "set" : next.default === false ? "unset" : current.default_intent;
    const replicasChanged = fields.includes("replicas");
    // Hosts are derived from the domain, and the document carries observability: agents need a new
    // document when either changes.
    const documentChanged = fields.includes("domain") || fields.includes("observability");
    // Every service's host derives from the domain (a whole document to every agent); observability
    // is the document's envelope only.
    const version = current.config_version + 1;
    const configMarks = fields.includes("domain")
      ? { config_version: version, head_version: version, full_version: version }
      : { config_version: version, head_version: version };
    gw.state.updateGateway({
      configuration: { ...next, name, default: next.default ?? current.configuration.default },
      configuration_path: input.configurationPath ?? current.configuration_path,
      last_update_at: Date.now(),
      default_intent: intent,
      ...(replicasChanged ? { scale_attempt: 0, last_scale_attempt_at: null } : {}),
      ...(documentChanged ? configMarks : {}),
    });
    gw.state.event(`Gateway updated. Changed fields: ${fields.join(", ")}`, input.actor);
    if (documentChanged) broadcastConfig(gw);
    await kick(gw);
  }
  await gw.flush();
  return ok({ gateway: gw.state.snapshot()!, created: false });
}

/** Records a new gateway (an apply without one, or the second half of a re-create, from the alarm). */
export async function createGateway(gw: GatewayContext, input: ApplyInput): Promise<Applied> {
  const now = Date.now();
  const config = input.configuration;
  gw.state.insertGateway({
    id: crypto.randomUUID(),
    project_id: input.projectId,
    project_name: input.projectName,
    name: config.name,
    configuration: config,
    configuration_path: input.configurationPath,
    status: "submitted",
    status_message: null,
    created_at: new Date(now).toISOString(),
    last_update_at: now,
    to_be_deleted: false,
    control_plane_url: input.controlPlaneUrl,
    hostname: null,
    backend_data: null,
    scale_attempt: 0,
    last_scale_attempt_at: null,
    default_intent: config.default === true ? "set" : config.default === false ? null : "if_none",
  });
  gw.state.event("Gateway created. Status: SUBMITTED", input.actor, {
    type: "gateway.status",
    data: { from: null, to: "submitted", message: null },
  });
  await refreshServiceTokens(gw);
  await refreshProjectAcme(gw);
  await kick(gw);
  await gw.flush();
  return ok({ gateway: gw.state.snapshot()!, created: true });
}

/**
 * A re-create, decided here before anything is destroyed: the configuration was validated and
 * the backend checked as for a create (by the Worker), the plan is current, and no service goes
 * unless allowed. Then the gateway is marked for deletion with the create to run once it is gone
 * (in the alarm, on this same object): the old replicas are terminated with the old
 * configuration's backend, and the new ones provisioned with the new. Nothing can refuse the
 * create afterwards: it only records the new gateway.
 */
async function recreate(gw: GatewayContext, current: GatewayRow, input: ApplyInput): Promise<Applied> {
  const refusal = refuseLosingServices(gw, current, input.cascade, "re-create");
  if (refusal) return refusal;
  const next: ApplyInput = { ...input, recreate: false, cascade: false, currentResource: null, force: false };
  const fields = diffConfigurations(current.configuration, input.configuration).map((c) => c.field);
  gw.state.updateGateway({ to_be_deleted: true, default_intent: null, recreate: JSON.stringify(next) });
  gw.state.event(
    `Gateway marked for re-creation${fields.length > 0 ? `. Changed fields: ${fields.join(", ")}` : ""}`,
    input.actor,
  );
  await kick(gw);
  await gw.flush();
  return ok({ gateway: gw.state.snapshot()!, created: false });
}

/** The gateway's services, by name (a deletion takes them with it). */
export function serviceNames(gw: GatewayContext): string[] {
  return gw.services.list().map((s) => s.name);
}

/** Refuses to delete (or re-create) a gateway that still has services, unless `cascade`. */
function refuseLosingServices(gw: GatewayContext, g: GatewayRow, cascade: boolean, action: "delete" | "re-create") {
  const names = serviceNames(gw);
  if (cascade || names.length === 0) return null;
  const e = servicesRefusal(g.name, names, action);
  return failure("conflict", e.code, e.message, e.field);
}

/**
 * Marks the gateway for deletion; replicas are terminated and the row removed asynchronously.
 * Its services (and their replica registrations) go with it only when `cascade` says so.
 */
export async function markForDeletion(gw: GatewayContext, actor: string, cascade: boolean): Promise<Outcome<Gateway>> {
  const g = gw.state.gateway();
  if (!g) return failure("not_found", "not_found", "Gateway does not exist");
  if (!g.to_be_deleted) {
    const refusal = refuseLosingServices(gw, g, cascade, "delete");
    if (refusal) return refusal;
    const names = serviceNames(gw);
    gw.state.updateGateway({ to_be_deleted: true, default_intent: null });
    gw.state.event(
      `Gateway marked for deletion${names.length > 0 ? ` with its services: ${names.join(", ")}` : ""}`,
      actor,
    );
    await kick(gw);
    await gw.flush();
  } else if (g.recreate) {
    // Deleting a gateway that waits to be re-created: it stays deleted.
    gw.state.updateGateway({ recreate: null });
    gw.state.event("Gateway re-creation cancelled: the gateway is deleted", actor);
    await gw.flush();
  }
  return ok(gw.state.snapshot()!);
}
