/**
 * @module
 * `gateplane apply -f FILE` for `type: service`: plan, show the plan, confirm, then create, update
 * in place, or (moving to another gateway) delete and re-create. Nothing is provisioned, so there
 * is nothing to wait for: the service is printed with where it is served and, while no replica is
 * registered yet, how to register one.
 */

import type { Spec } from "../../schema/plan-envelope.ts";
import type { ServiceConfiguration } from "../../schema/service.ts";
import type { Service, ServicePlan } from "../../schema/service-api.ts";
import { parseFieldPath, type ServiceFile } from "../configuration-file.ts";
import type { Context } from "../context.ts";
import { CliError, ControlPlaneError } from "../errors.ts";
import { servicesTable } from "../services-table.ts";
import { renderKeyValues } from "../text-table.ts";
import { confirmed } from "./confirm.ts";

export interface ServiceApplyArgs {
  yes: boolean;
  force: boolean;
  verbose: boolean;
}

export async function applyService(ctx: Context, args: ServiceApplyArgs, file: ServiceFile): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  const spec: Spec = { configuration: file.raw, configuration_path: file.path };
  // The control plane checks what a file cannot (the gateway's certificate for https, say); its
  // `field` leads back to the line to edit.
  const inFile = <T>(request: Promise<T>) => request.catch((e: unknown) => Promise.reject(atField(e, file)));

  const plan = await ctx.spinner("Getting apply plan...", () => inFile(api.planService(project, spec)));
  const user = plan.user || (await api.me()).user;
  ctx.printLines(planHeader(ctx, plan, user));
  ctx.print();

  const current = plan.current_resource;
  if (current === null) {
    ctx.print(`Service ${plan.effective_spec.configuration.name ?? file.configuration.name} does not exist yet.`);
    if (!(await confirmed(ctx, args.yes, "Create the service?"))) return 0;
    const created = await ctx.spinner("Creating service...", () =>
      inFile(api.applyService(project, { spec, current_resource: null }, args.force)),
    );
    return done(ctx, args, created);
  }

  if (plan.changes.length === 0) {
    // Re-creating would drop the registered replicas for nothing; --force re-applies in place.
    if (!args.force) {
      ctx.print(`Found service ${current.name}. No configuration changes detected. Use --force to apply anyway.`);
      return 0;
    }
    ctx.print(`Found service ${current.name}. No configuration changes detected.`);
  } else {
    const inPlace = plan.action === "update";
    ctx.print(
      `Found service ${current.name}. Detected changes that ${inPlace ? "can" : "cannot"} be updated in-place:`,
    );
    for (const change of plan.changes) ctx.print(`- ${change.field}`);
    ctx.print();
    if (!inPlace) {
      const ids = current.replicas.map((r) => r.id);
      if (ids.length > 0) {
        ctx.print(`Re-creating the service removes its registered replicas (${ids.join(", ")}); register them again.`);
      }
      if (!(await confirmed(ctx, args.yes, "Re-create the service?"))) return 0;
      await ctx.spinner("Deleting existing service...", () => deleteIfPresent(ctx, project, current.name));
      const created = await ctx.spinner("Creating service...", () =>
        inFile(api.applyService(project, { spec, current_resource: null }, args.force)),
      );
      return done(ctx, args, created);
    }
  }
  if (!(await confirmed(ctx, args.yes, "Update the service?"))) return 0;
  const updated = await ctx.spinner("Updating service...", () =>
    inFile(api.applyService(project, { spec, current_resource: current }, args.force)),
  );
  return done(ctx, args, updated);
}

/** The service as it now is, where to reach it and, until something registered, what to do next. */
function done(ctx: Context, args: ServiceApplyArgs, service: Service): number {
  ctx.printLines(servicesTable([service], { verbose: args.verbose, now: ctx.io.now() }, ctx.style));
  ctx.print();
  ctx.printLines(availability(service));
  return 0;
}

export function availability(service: Service): string[] {
  const lines = [`Service is available at ${service.url}`];
  if (service.model_url) lines.push(`Model endpoint: ${service.model_url}`);
  if (service.replicas.length === 0) {
    lines.push(`No replicas registered yet: gateplane service replica add ${service.name} --id <id> --url <url>`);
  }
  return lines;
}

/** Services are deleted at once; one that vanished since the plan needs no deleting. */
async function deleteIfPresent(ctx: Context, project: string, name: string): Promise<void> {
  try {
    await ctx.api().deleteService(project, name);
  } catch (e) {
    if (!(e instanceof ControlPlaneError && e.status === 404)) throw e;
  }
}

/** A 400 naming a field becomes `file:line:col: field: message`; anything else stays as it is. */
function atField(e: unknown, file: ServiceFile): unknown {
  if (!(e instanceof ControlPlaneError) || e.status !== 400 || !e.field) return e;
  const prefix = `${e.field}: `;
  const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  return new CliError(file.describe({ path: parseFieldPath(e.field), message }));
}

const range = (r: { min: number; max: number }) => (r.min === r.max ? String(r.min) : `${r.min}..${r.max}`);

/** `1..4`; a PD service scaled per role: `prefill 1..4, decode 1..8`. */
export const replicaCount = (replicas: ServiceConfiguration["replicas"]): string =>
  replicas.groups ? replicas.groups.map((g) => `${g.name} ${range(g.count)}`).join(", ") : range(replicas);

function planHeader(ctx: Context, plan: ServicePlan, user: string): string[] {
  const conf = plan.effective_spec.configuration;
  const pairs: [string, string][] = [
    ["Project", plan.project_name],
    ["User", user],
    ["Configuration", plan.spec.configuration_path ?? plan.effective_spec.configuration_path ?? "-"],
    ["Type", "service"],
    ["Gateway", conf.gateway ?? "default"],
    ["Replicas", replicaCount(conf.replicas)],
  ];
  if (conf.model) pairs.push(["Model", conf.model.name]);
  return renderKeyValues(pairs, ctx.style);
}
