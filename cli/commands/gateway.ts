/**
 * @module
 * `gateplane gateway [list|get|delete|update]`: gateways by name, without a configuration file.
 */
import type { Gateway } from "../../schema/api.ts";
import type { GatewayList } from "../api-client.ts";
import { connectionOf, type GlobalValues, parseCommandArgs, takePositionals } from "../args.ts";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { gatewayDetails } from "../gateway-details.ts";
import { gatewaysTable } from "../gateways-table.ts";
import { deletionNotice } from "./deletion-notice.ts";

const WATCH_INTERVAL_MS = 2000;

const SUBCOMMANDS = {
  list: {
    options: {
      watch: { type: "boolean", short: "w" },
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      format: { type: "string" },
    },
    positionals: [],
  },
  get: { options: { json: { type: "boolean" }, verbose: { type: "boolean", short: "v" } }, positionals: ["NAME"] },
  delete: { options: { yes: { type: "boolean", short: "y" } }, positionals: ["NAME"] },
  update: { options: { "set-default": { type: "boolean" } }, positionals: ["NAME"] },
} as const;

type Subcommand = keyof typeof SUBCOMMANDS;

export interface GatewayArgs {
  subcommand: Subcommand;
  name: string | undefined;
  help: boolean;
  watch: boolean;
  verbose: boolean;
  json: boolean;
  yes: boolean;
  global: GlobalValues;
}

export function parseGatewayArgs(args: readonly string[]): GatewayArgs {
  const first = args[0];
  const explicit = first !== undefined && !first.startsWith("-");
  if (explicit && !(first in SUBCOMMANDS)) {
    throw new UsageError(`gateplane gateway: unknown command '${first}'; expected list, get, delete or update`);
  }
  const subcommand: Subcommand = explicit ? (first as Subcommand) : "list";
  const spec = SUBCOMMANDS[subcommand];
  const rest = explicit ? args.slice(1) : args;
  const { values, positionals } = parseCommandArgs(`gateway ${subcommand}`, rest, spec.options);
  const v = values as Record<string, string | boolean | undefined>;
  const help = v.help === true;
  const [name] = takePositionals(`gateway ${subcommand}`, positionals, spec.positionals);
  if (!help && spec.positionals.length > 0 && name === undefined) {
    throw new UsageError(`gateplane gateway ${subcommand}: NAME is required`);
  }
  if (name?.includes("/")) {
    throw new UsageError(`gateplane gateway ${subcommand}: '${name}': give the project with -p, not in the name`);
  }
  const format = v.format;
  if (format !== undefined && format !== "plain" && format !== "json") {
    throw new UsageError(`gateplane gateway list: --format must be plain or json, got '${format}'`);
  }
  if (subcommand === "update" && !help && v["set-default"] !== true) {
    throw new UsageError("gateplane gateway update: nothing to change; pass --set-default");
  }
  const json = v.json === true || format === "json";
  const watch = v.watch === true;
  if (watch && json) throw new UsageError("gateplane gateway list: --watch cannot be combined with JSON output");
  return {
    subcommand,
    name,
    help,
    watch,
    verbose: v.verbose === true,
    json,
    yes: v.yes === true,
    global: connectionOf(v),
  };
}

export async function gateway(ctx: Context, args: GatewayArgs): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  const table = (gateways: readonly Gateway[]) =>
    gatewaysTable(gateways, { verbose: args.verbose, now: ctx.io.now() }, ctx.style);

  switch (args.subcommand) {
    case "list": {
      if (args.watch) return watch(ctx, project, table);
      const list = await api.list(project);
      if (args.json) ctx.printJson({ project: list.project, gateways: list.gateways });
      else ctx.printLines(table(list.gateways));
      return 0;
    }
    case "get": {
      const found = await api.get(project, args.name!);
      if (args.json) ctx.printJson(found);
      else {
        const { services } = await api.listServices(project);
        ctx.printLines(gatewayDetails(found, services, ctx.io.now(), ctx.style));
      }
      return 0;
    }
    case "delete": {
      const found = await api.get(project, args.name!);
      const services = await api.servicesOf(project, found.name);
      ctx.printLines(table([found]));
      if (services.length > 0) ctx.print();
      ctx.printLines(deletionNotice(found.name, services, "Deleting"));
      const what = services.length > 0 ? ` and its ${services.length === 1 ? "service" : "services"}` : "";
      if (!args.yes && !(await ctx.confirm(`Do you want to delete the gateway${what}?`))) {
        ctx.print();
        ctx.print("Exiting...");
        return 0;
      }
      // Confirmed (or -y) with the services listed: that is the cascade the API asks for.
      await ctx.spinner("Deleting gateway...", () => api.delete(project, found.name, services.length > 0));
      ctx.print(`Gateway deleted${services.length > 0 ? ` with ${services.map((s) => s.name).join(", ")}` : ""}`);
      return 0;
    }
    case "update": {
      const updated = await api.setDefault(project, args.name!);
      ctx.printLines(table([updated]));
      return 0;
    }
  }
}

/** Redraws the list every 2 s until Ctrl-C, leaving the last table on screen. */
async function watch(ctx: Context, project: string, table: (g: readonly Gateway[]) => string[]): Promise<number> {
  const interrupt = new AbortController();
  const stopListening = ctx.io.onInterrupt(() => interrupt.abort());
  const live = ctx.live("").start();
  let last: GatewayList | null = null;
  try {
    for (;;) {
      last = await ctx.api().list(project, interrupt.signal);
      if (ctx.interactive) live.update(table(last.gateways));
      else ctx.printLines([...table(last.gateways), ""]);
      await ctx.io.sleep(WATCH_INTERVAL_MS, interrupt.signal);
    }
  } catch (e) {
    if (!interrupt.signal.aborted) throw e;
  } finally {
    live.stop();
    stopListening();
  }
  if (ctx.interactive && last) ctx.printLines(table(last.gateways));
  return 0;
}
