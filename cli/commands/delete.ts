/**
 * @module
 * `gateplane delete -f FILE`: deletes the gateway a configuration names.
 */
import { parseCommandArgs, takePositionals } from "../args.ts";
import { loadConfigurationFile } from "../configuration-file.ts";
import type { Context } from "../context.ts";
import { ApiError, CliError, UsageError } from "../errors.ts";

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
  const { configuration } = loadConfigurationFile(values.file, ctx.io.cwd);
  const name = configuration.name;
  if (!name) throw new CliError("Configuration specifies no gateway to delete");
  const { project } = ctx.settings();
  const api = ctx.api();
  try {
    await api.get(project, name);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new CliError(`Gateway ${name} does not exist`);
    throw e;
  }
  if (!values.yes && !(await ctx.confirm(`Delete the gateway ${name}?`))) {
    ctx.print();
    ctx.print("Exiting...");
    return 0;
  }
  await ctx.spinner("Deleting gateway...", () => api.delete(project, name));
  ctx.print(`Gateway ${name} deleted`);
  return 0;
}
