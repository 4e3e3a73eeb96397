/**
 * @module
 * `gateplane service-token [list|create|revoke]`: the tokens that open the project's services with
 * `auth: true` on its gateways (`gps_…`). They are not API tokens: the control plane refuses them,
 * and gateways refuse API tokens, so a replica is never handed a credential that works on the API.
 */

import { formatAge } from "../age.ts";
import { parseCommandArgs, takePositionals } from "../args.ts";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { renderTable } from "../text-table.ts";
import { confirmed } from "./confirm.ts";

export const SERVICE_TOKEN_HELP = `Usage: gateplane service-token [list] [--json]
       gateplane service-token create [--description D] [-q] [--json]
       gateplane service-token revoke ID [-y]

Service tokens open the project's services that have auth: true, on every gateway of the
project: clients send Authorization: Bearer gps_… . They open nothing else: the control plane's
API refuses them, and gateways refuse API tokens. The gateway removes the header before the
request reaches a replica. Any member of the project manages them; they belong to the project.

Commands:
  list                   List the project's service tokens (never their secrets; the default)
  create                 Create one and print it, once
  revoke ID              Revoke one; gateways stop accepting it within seconds

Options:
  --description D        create: what the token is for
  -q, --quiet            create: print only the token (TOKEN=$(gateplane service-token create -q))
  --json                 print JSON
  -y, --yes              revoke: do not ask for confirmation
  -h, --help             Show this help`;

const SUBCOMMANDS = {
  list: { options: { json: { type: "boolean" } }, positionals: [] },
  create: {
    options: { description: { type: "string" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" } },
    positionals: [],
  },
  revoke: { options: { yes: { type: "boolean", short: "y" } }, positionals: ["ID"] },
} as const;

type Subcommand = keyof typeof SUBCOMMANDS;

export interface ServiceTokenArgs {
  subcommand: Subcommand;
  id: string | undefined;
  description: string | undefined;
  quiet: boolean;
  json: boolean;
  yes: boolean;
  help: boolean;
  global: { url?: string | undefined; token?: string | undefined; project?: string | undefined };
}

export function parseServiceTokenArgs(args: readonly string[]): ServiceTokenArgs {
  const first = args[0];
  const explicit = first !== undefined && !first.startsWith("-");
  if (explicit && !(first in SUBCOMMANDS)) {
    throw new UsageError(
      `gateplane service-token: unknown command '${first}'; expected ${Object.keys(SUBCOMMANDS).join(", ")}`,
    );
  }
  const subcommand: Subcommand = explicit ? (first as Subcommand) : "list";
  const command = `service-token ${subcommand}`;
  const spec = SUBCOMMANDS[subcommand];
  const { values, positionals } = parseCommandArgs(command, explicit ? args.slice(1) : args, spec.options);
  const o = values as Record<string, string | boolean | undefined>;
  const [id] = takePositionals(command, positionals, spec.positionals);
  const parsed: ServiceTokenArgs = {
    subcommand,
    id,
    description: typeof o.description === "string" ? o.description : undefined,
    quiet: o.quiet === true,
    json: o.json === true,
    yes: o.yes === true,
    help: o.help === true,
    global: { url: str(o.url), token: str(o.token), project: str(o.project) },
  };
  if (!parsed.help && subcommand === "revoke" && id === undefined) {
    throw new UsageError(`gateplane ${command}: ID is required (see gateplane service-token list)`);
  }
  if (parsed.quiet && parsed.json) throw new UsageError(`gateplane ${command}: give -q or --json, not both`);
  return parsed;
}

export async function serviceToken(ctx: Context, args: ServiceTokenArgs): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  switch (args.subcommand) {
    case "list": {
      const list = await api.listServiceTokens(project);
      if (args.json) ctx.print(JSON.stringify(list, null, 2));
      else {
        const now = ctx.io.now();
        const rows = list.service_tokens.map((t) => ({
          cells: [t.id, t.description ?? "", t.created_by, formatAge(t.created_at, now)],
        }));
        ctx.printLines(renderTable(["ID", "DESCRIPTION", "CREATED BY", "CREATED"], rows, ctx.style));
      }
      return 0;
    }
    case "create": {
      const created = await api.createServiceToken(project, args.description);
      if (args.quiet) ctx.print(created.token);
      else if (args.json) ctx.print(JSON.stringify(created, null, 2));
      else {
        ctx.print(`Service token ${created.id} created in project ${project}.`);
        ctx.print("It opens the project's services with auth: true (Authorization: Bearer <token>).");
        ctx.print("Shown once; keep it:");
        ctx.print(created.token);
      }
      return 0;
    }
    case "revoke": {
      const id = args.id!;
      if (!(await confirmed(ctx, args.yes, `Revoke the service token ${id}? Clients using it lose access.`))) return 0;
      await api.revokeServiceToken(project, id);
      ctx.print(`Service token ${id} revoked`);
      return 0;
    }
  }
}

const str = (value: string | boolean | undefined) => (typeof value === "string" ? value : undefined);
