/**
 * @module
 * `gateplane delete -f FILE`: deletes the gateway or service a configuration names. A gateway's
 * services (and their replica registrations) are listed before the question and deleted with it.
 */
import { parseCommandArgs, takePositionals } from "../args.ts";
import { loadConfigurationFile } from "../configuration-file.ts";
import type { Context } from "../context.ts";
import { CliError, ControlPlaneError, UsageError } from "../errors.ts";
import { confirmed } from "./confirm.ts";
import { deletionNotice } from "./deletion-notice.ts";

export const DELETE_OPTIONS = {
  file: { type: "string", short: "f" },
  yes: { type: "boolean", short: "y" },
} as const;

export function parseDeleteArgs(args: readonly string[]) {
  const { values, positionals } = parseCommandArgs("delete", args, DELETE_OPTIONS);
  takePositionals("delete", positionals, []);
  return values;
}

export async function deleteConfiguration(ctx: Context, values: ReturnType<typeof parseDeleteArgs>): Promise<number> {
  if (!values.file)
    throw new UsageError("gateplane delete: -f FILE is required (e.g. gateplane delete -f gateway.dstack.yml)");
  const file = loadConfigurationFile(values.file, ctx.io.cwd);
  const name = file.configuration.name;
  if (!name) throw new CliError(`Configuration specifies no ${file.type} to delete`);
  const { project } = ctx.settings();
  const api = ctx.api();
  const kind = file.type === "service" ? "Service" : "Gateway";
  try {
    await (file.type === "service" ? api.getService(project, name) : api.get(project, name));
  } catch (e) {
    if (e instanceof ControlPlaneError && e.status === 404) throw new CliError(`${kind} ${name} does not exist`);
    throw e;
  }
  const services = file.type === "gateway" ? await api.servicesOf(project, name) : [];
  ctx.printLines(deletionNotice(name, services, "Deleting"));
  const what =
    services.length > 0 ? ` and its ${services.length === 1 ? "service" : `${services.length} services`}` : "";
  if (!(await confirmed(ctx, values.yes ?? false, `Delete the ${file.type} ${name}${what}?`))) return 0;
  await ctx.spinner(`Deleting ${file.type}...`, async () => {
    // Confirmed (or -y) with the services listed: that is the cascade the API asks for.
    await (file.type === "service" ? api.deleteService(project, name) : api.delete(project, name, services.length > 0));
  });
  ctx.print(`${kind} ${name}${what} deleted`);
  return 0;
}
