/**
 * @module
 * `gateplane apply -f FILE`: plan, show the plan, confirm, then create, update in place, or
 * re-create (one request: the server checks the new configuration before it deletes anything);
 * then follow provisioning until the gateway runs or fails. Service files take
 * their own path (`apply-service.ts`), chosen by the file's `type`. Wording follows dstack's
 * gateway configurator so that its users feel at home.
 */
import type { Gateway, GatewayPlan } from "../../schema/api.ts";
import type { Spec } from "../../schema/plan-envelope.ts";
import { parseCommandArgs, takePositionals } from "../args.ts";
import { loadConfigurationFile } from "../configuration-file.ts";
import type { Context } from "../context.ts";
import { dnsGuidance } from "../dns-guidance.ts";
import { INTERRUPTED_EXIT_CODE, UsageError } from "../errors.ts";
import { gatewaysTable } from "../gateways-table.ts";
import { renderKeyValues } from "../text-table.ts";
import { applyService } from "./apply-service.ts";
import { confirmed as confirmedOrExit } from "./confirm.ts";
import { deletionNotice } from "./deletion-notice.ts";

/**
 * The pause before each look at a gateway being provisioned: 250 ms, doubling to every 2 s. A local
 * gateway runs within a second or two and is shown as soon as it does; a cloud one takes minutes and
 * is looked at every 2 s as before (three more requests in all).
 */
export const provisioningPollMs = (look: number): number => Math.min(250 * 2 ** look, 2000);

export const APPLY_OPTIONS = {
  file: { type: "string", short: "f" },
  yes: { type: "boolean", short: "y" },
  force: { type: "boolean" },
  detach: { type: "boolean", short: "d" },
  name: { type: "string", short: "n" },
  verbose: { type: "boolean", short: "v" },
} as const;

interface ApplyArgs {
  file: string;
  yes: boolean;
  force: boolean;
  detach: boolean;
  name: string | undefined;
  verbose: boolean;
}

export function parseApplyArgs(args: readonly string[]) {
  const { values, positionals } = parseCommandArgs("apply", args, APPLY_OPTIONS);
  takePositionals("apply", positionals, []);
  return values;
}

export async function apply(ctx: Context, values: ReturnType<typeof parseApplyArgs>): Promise<number> {
  if (!values.file)
    throw new UsageError("gateplane apply: -f FILE is required (e.g. gateplane apply -f gateway.dstack.yml)");
  const args: ApplyArgs = {
    file: values.file,
    yes: values.yes ?? false,
    force: values.force ?? false,
    detach: values.detach ?? false,
    name: values.name,
    verbose: values.verbose ?? false,
  };
  const file = loadConfigurationFile(args.file, ctx.io.cwd, { name: args.name });
  if (file.type === "service") return applyService(ctx, args, file);
  const { project } = ctx.settings();
  const api = ctx.api();
  const spec: Spec = { configuration: file.raw, configuration_path: file.path };

  const plan = await ctx.spinner("Getting apply plan...", () => api.plan(project, spec));
  const user = plan.user || (await api.me()).user;
  ctx.printLines(planHeader(ctx, plan, user));
  ctx.print();

  // Send the name the plan settled on, so that a generated name shown to the user is the one created.
  const name = plan.current_resource?.name ?? plan.effective_spec.configuration.name;
  const pinned: Spec = name ? { ...spec, configuration: { ...spec.configuration, name } } : spec;

  const current = plan.current_resource;
  if (current === null) {
    if (name) ctx.print(`Gateway ${name} does not exist yet.`);
    if (!(await confirmed(ctx, args, "Create the gateway?"))) return 0;
    const created = await ctx.spinner("Creating gateway...", () =>
      api.apply(project, { spec: pinned, current_resource: null }, args.force),
    );
    return follow(ctx, args, project, created);
  }

  if (plan.changes.length === 0) {
    if (args.yes && !args.force) {
      // With -y nobody is asked, so re-creating an unchanged gateway needs an explicit --force.
      ctx.print("No configuration changes detected. Use --force to apply anyway.");
      return 0;
    }
    ctx.print(`Found gateway ${current.name}. No configuration changes detected.`);
    return recreate(ctx, args, project, current, pinned);
  }

  const inPlace = plan.action === "update";
  ctx.print(`Found gateway ${current.name}. Detected changes that ${inPlace ? "can" : "cannot"} be updated in-place:`);
  for (const change of plan.changes) ctx.print(`- ${change.field}`);
  ctx.print();
  if (!inPlace) return recreate(ctx, args, project, current, pinned);
  if (!(await confirmed(ctx, args, "Update the gateway?"))) return 0;
  const updated = await ctx.spinner("Updating gateway...", () =>
    api.apply(project, { spec: pinned, current_resource: current }, args.force),
  );
  ctx.printLines(gatewaysTable([updated], { verbose: args.verbose, now: ctx.io.now() }, ctx.style));
  const dns = dnsGuidance(updated);
  if (dns.length > 0) {
    ctx.print();
    ctx.printLines(dns);
  }
  return 0;
}

const confirmed = (ctx: Context, args: ApplyArgs, question: string) => confirmedOrExit(ctx, args.yes, question);

/**
 * Asks (listing the services that go with the gateway), then has the server re-create it in one
 * request: refused with nothing changed, or the old gateway is deleted and the new one created.
 */
async function recreate(ctx: Context, args: ApplyArgs, project: string, current: Gateway, spec: Spec): Promise<number> {
  const api = ctx.api();
  const services = await api.servicesOf(project, current.name);
  ctx.printLines(deletionNotice(current.name, services, "Re-creating"));
  if (!(await confirmed(ctx, args, "Re-create the gateway?"))) return 0;
  const replaced = await ctx.spinner("Re-creating gateway...", () =>
    api.apply(project, { spec, current_resource: current }, args.force, {
      recreate: true,
      cascade: services.length > 0,
    }),
  );
  return follow(ctx, args, project, replaced, current.id);
}

/**
 * Follows a new gateway until it runs or fails, unless detached or interrupted. A re-created one
 * is followed through the old gateway's deletion (`replacing` is its id) until the new one runs.
 */
async function follow(
  ctx: Context,
  args: ApplyArgs,
  project: string,
  created: Gateway,
  replacing: string | null = null,
): Promise<number> {
  if (args.detach) {
    ctx.print("Gateway configuration submitted. Exiting...");
    return 0;
  }
  const api = ctx.api();
  const interrupt = new AbortController();
  const stopListening = ctx.io.onInterrupt(() => interrupt.abort());
  const live = ctx.live(`Provisioning ${created.name}...`).start();
  let gateway = created;
  let look = 0;
  try {
    while (gateway.id === replacing || !finished(gateway)) {
      live.update(gatewaysTable([gateway], { includeCreated: true, now: ctx.io.now() }, ctx.style));
      await ctx.io.sleep(provisioningPollMs(look++), interrupt.signal);
      gateway = await api.get(project, gateway.name, interrupt.signal);
    }
  } catch (e) {
    if (!interrupt.signal.aborted) throw e;
  } finally {
    live.stop();
    stopListening();
  }

  if (interrupt.signal.aborted) {
    ctx.print();
    if (!args.yes && (await ctx.confirm("Delete the gateway before exiting?"))) {
      await ctx.spinner("Deleting gateway...", () => api.delete(project, gateway.name));
      ctx.print(`Gateway ${gateway.name} deleted`);
    } else {
      ctx.print("Exiting... Gateway provisioning will continue in the background.");
    }
    return INTERRUPTED_EXIT_CODE;
  }

  const failed = gateway.status === "failed";
  ctx.printLines(
    gatewaysTable([gateway], { includeCreated: true, verbose: args.verbose || failed, now: ctx.io.now() }, ctx.style),
  );
  if (failed) {
    ctx.printError(`Provisioning failed. Error: ${gateway.status_message || "unknown"}`);
    return 1;
  }
  const dns = dnsGuidance(gateway);
  if (dns.length > 0) {
    ctx.print();
    ctx.printLines(dns);
  }
  return 0;
}

const finished = (gateway: Gateway) => gateway.status === "running" || gateway.status === "failed";

function planHeader(ctx: Context, plan: GatewayPlan, user: string): string[] {
  const conf = plan.effective_spec.configuration;
  return renderKeyValues(
    [
      ["Project", plan.project_name],
      ["User", user],
      ["Configuration", plan.spec.configuration_path ?? plan.effective_spec.configuration_path ?? "-"],
      ["Type", conf.type],
      ["Backend", conf.backend],
      ["Region", conf.region],
      ["Domain", conf.domain ?? "-"],
      ["Replicas", String(conf.replicas)],
    ],
    ctx.style,
  );
}
