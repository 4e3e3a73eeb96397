/**
 * @module
 * `gateplane service [list|get|delete]` and `gateplane service replica add|remove|list`: services
 * by name, and the replica endpoints that whatever runs a service registers with its gateway.
 */
import * as v from "valibot";
import { formatPath } from "../../schema/issues.ts";
import { ReplicaEndpoint } from "../../schema/service.ts";
import { connectionOf, type GlobalValues, parseCommandArgs, takePositionals } from "../args.ts";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { roleScalingLines } from "../role-scaling.ts";
import { serviceRouterLines } from "../router-modes.ts";
import { engineLines } from "../service-engine.ts";
import { healthLines } from "../service-health.ts";
import { pdLines } from "../service-pd.ts";
import { DEFAULT_TRAFFIC_WINDOW, TRAFFIC_WINDOWS, type TrafficWindowName, trafficLines } from "../service-traffic.ts";
import { replicasTable, servicesTable } from "../services-table.ts";
import { confirmed } from "./confirm.ts";

const SUBCOMMANDS = {
  list: {
    options: {
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      format: { type: "string" },
      window: { type: "string" },
    },
    positionals: [],
  },
  get: {
    options: { json: { type: "boolean" }, verbose: { type: "boolean", short: "v" }, window: { type: "string" } },
    positionals: ["NAME"],
  },
  delete: { options: { yes: { type: "boolean", short: "y" } }, positionals: ["NAME"] },
  "replica add": {
    options: {
      id: { type: "string" },
      url: { type: "string" },
      role: { type: "string" },
      "bootstrap-port": { type: "string" },
    },
    positionals: ["NAME"],
  },
  "replica remove": { options: {}, positionals: ["NAME", "ID"] },
  "replica list": { options: { json: { type: "boolean" } }, positionals: ["NAME"] },
} as const;

type Subcommand = keyof typeof SUBCOMMANDS;
const REPLICA_SUBCOMMANDS = ["add", "remove", "list"] as const;

export interface ServiceArgs {
  subcommand: Subcommand;
  /** The service, for every subcommand but `list`. */
  name: string | undefined;
  /** `replica add --id` or `replica remove`'s ID. */
  replicaId: string | undefined;
  /** `replica add --url`. */
  replicaUrl: string | undefined;
  /** `replica add --role prefill|decode` (absent: co-located). */
  replicaRole: string | undefined;
  /** `replica add --bootstrap-port N` (prefill replicas). */
  bootstrapPort: string | undefined;
  help: boolean;
  verbose: boolean;
  /** The traffic window `get` and `list -v` show (`--window 30|60|300`, seconds). */
  window: TrafficWindowName;
  json: boolean;
  yes: boolean;
  global: GlobalValues;
}

export function parseServiceArgs(args: readonly string[]): ServiceArgs {
  const { subcommand, rest } = splitSubcommand(args);
  const command = `service ${subcommand}`;
  const spec = SUBCOMMANDS[subcommand];
  const { values, positionals } = parseCommandArgs(command, rest, spec.options);
  const o = values as Record<string, string | boolean | undefined>;
  const help = o.help === true;
  const [name, id] = takePositionals(command, positionals, spec.positionals);
  const parsed: ServiceArgs = {
    subcommand,
    name,
    replicaId: subcommand === "replica add" ? stringOf(o.id) : id,
    replicaUrl: stringOf(o.url),
    replicaRole: stringOf(o.role),
    bootstrapPort: stringOf(o["bootstrap-port"]),
    help,
    verbose: o.verbose === true,
    window: help ? DEFAULT_TRAFFIC_WINDOW : windowOf(command, o.window),
    json: o.json === true || o.format === "json",
    yes: o.yes === true,
    global: connectionOf(o),
  };
  if (help) return parsed;

  const missing = spec.positionals.slice(positionals.length);
  if (missing.length > 0) {
    throw new UsageError(
      `gateplane ${command}: ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} required`,
    );
  }
  if (name?.includes("/")) {
    throw new UsageError(`gateplane ${command}: '${name}': give the project with -p, not in the name`);
  }
  if (o.format !== undefined && o.format !== "plain" && o.format !== "json") {
    throw new UsageError(`gateplane ${command}: --format must be plain or json, got '${o.format}'`);
  }
  if (subcommand === "replica add") checkEndpoint(command, parsed);
  return parsed;
}

function splitSubcommand(args: readonly string[]): { subcommand: Subcommand; rest: readonly string[] } {
  const first = args[0];
  if (first === undefined || first.startsWith("-")) return { subcommand: "list", rest: args };
  if (first === "replica") {
    const second = args[1];
    if (second !== undefined && (REPLICA_SUBCOMMANDS as readonly string[]).includes(second)) {
      return { subcommand: `replica ${second}` as Subcommand, rest: args.slice(2) };
    }
    if (second === "-h" || second === "--help") return { subcommand: "replica list", rest: ["--help"] };
    const got = second === undefined ? "" : `unknown command '${second}'; `;
    throw new UsageError(`gateplane service replica: ${got}expected add, remove or list`);
  }
  if (first === "list" || first === "get" || first === "delete") return { subcommand: first, rest: args.slice(1) };
  throw new UsageError(`gateplane service: unknown command '${first}'; expected list, get, delete or replica`);
}

/** The endpoint is checked here, with the schema the control plane uses, before anyone is asked. */
function checkEndpoint(command: string, args: ServiceArgs): void {
  const { replicaId: id, replicaUrl: url } = args;
  if (id === undefined) throw new UsageError(`gateplane ${command}: --id ID is required`);
  if (url === undefined) throw new UsageError(`gateplane ${command}: --url URL is required`);
  const result = v.safeParse(ReplicaEndpoint, { id, url, ...roleOf(args) });
  if (result.success) return;
  // One line per option: a URL that is not one at all fails several checks that say the same.
  const byOption = new Map<string, string>();
  for (const issue of result.issues) {
    const option = `--${formatPath((issue.path ?? []).map((p) => p.key as string)).replace("_", "-")}`;
    if (!byOption.has(option)) byOption.set(option, issue.message);
  }
  throw new UsageError(
    [...byOption].map(([option, message]) => `gateplane ${command}: ${option}: ${message}`).join("\n"),
  );
}

export async function service(ctx: Context, args: ServiceArgs): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  const now = ctx.io.now();
  const name = args.name!;

  switch (args.subcommand) {
    case "list": {
      const list = await api.listServices(project);
      if (args.json) ctx.printJson({ project: list.project, services: list.services });
      else {
        const options = { verbose: args.verbose, window: args.window, now };
        ctx.printLines(servicesTable(list.services, options, ctx.style));
      }
      return 0;
    }
    case "get": {
      const found = await api.getService(project, name);
      if (args.json) ctx.printJson(found);
      else
        ctx.printLines([
          ...servicesTable([found], { verbose: args.verbose, window: args.window, now }, ctx.style),
          ...serviceRouterLines(found),
          ...roleScalingLines(found, ctx.style),
          ...pdLines(found, ctx.style),
          ...engineLines(found, ctx.style),
          ...healthLines(found, ctx.style),
          ...trafficLines(found, args.window, ctx.style),
        ]);
      return 0;
    }
    case "delete": {
      const found = await api.getService(project, name);
      ctx.printLines(servicesTable([found], { now }, ctx.style));
      if (!(await confirmed(ctx, args.yes, `Delete the service ${found.name}?`))) return 0;
      await ctx.spinner("Deleting service...", () => api.deleteService(project, found.name));
      ctx.print(`Service ${found.name} deleted`);
      return 0;
    }
    case "replica add": {
      const id = args.replicaId!;
      const { created } = await api.putServiceReplica(project, name, { id, url: args.replicaUrl!, ...roleOf(args) });
      ctx.print(created ? `Replica ${id} added to ${name}` : `Replica ${id} updated in ${name}`);
      return 0;
    }
    case "replica remove": {
      const id = args.replicaId!;
      await api.removeServiceReplica(project, name, id);
      ctx.print(`Replica ${id} removed from ${name}`);
      return 0;
    }
    case "replica list": {
      const found = await api.getService(project, name);
      if (args.json) ctx.printJson({ service: found.name, replicas: found.replicas });
      else ctx.printLines(replicasTable(found, now, ctx.style));
      return 0;
    }
  }
}

/** `--role` and `--bootstrap-port` as the API takes them (a port that is not a number fails the schema). */
function roleOf(args: ServiceArgs): { role?: string; bootstrap_port?: number | string } {
  const out: { role?: string; bootstrap_port?: number | string } = {};
  if (args.replicaRole !== undefined) out.role = args.replicaRole;
  if (args.bootstrapPort !== undefined) {
    out.bootstrap_port = /^\d+$/.test(args.bootstrapPort) ? Number(args.bootstrapPort) : args.bootstrapPort;
  }
  return out;
}

const stringOf = (value: string | boolean | undefined) => (typeof value === "string" ? value : undefined);

/** `--window 30|60|300` (a trailing `s` allowed); 60 when absent. */
function windowOf(command: string, value: string | boolean | undefined): TrafficWindowName {
  if (value === undefined || typeof value === "boolean") return DEFAULT_TRAFFIC_WINDOW;
  const seconds = value.trim().replace(/s$/, "");
  if ((TRAFFIC_WINDOWS as readonly string[]).includes(seconds)) return seconds as TrafficWindowName;
  throw new UsageError(`gateplane ${command}: --window must be 30, 60 or 300 (seconds), got '${value}'`);
}
