/**
 * @module
 * `gateplane project [list]|create|get` and `gateplane member [list]|add|remove`: projects, and who
 * may use one with which role (`admin` manages members, credentials and settings; `member` uses
 * gateways and services). Creating a project needs a global admin token.
 */

import { PAGE_LIMIT_DEFAULT } from "../../schema/paging.ts";
import { accounts } from "../accounts-api.ts";
import { formatAge } from "../age.ts";
import type { Context } from "../context.ts";
import { CliError } from "../errors.ts";
import { renderKeyValues, renderTable } from "../text-table.ts";
import { confirmed } from "./confirm.ts";
import { JSON_OPTION, type ParsedSubcommand, parseSubcommand, stringOf, YES_OPTION } from "./subcommands.ts";

const PROJECT = {
  list: { options: JSON_OPTION, positionals: [] },
  create: { options: JSON_OPTION, positionals: ["NAME"] },
  get: { options: JSON_OPTION, positionals: ["[NAME]"] },
} as const;

const MEMBER = {
  list: { options: JSON_OPTION, positionals: [] },
  add: { options: { role: { type: "string" }, ...JSON_OPTION }, positionals: ["USER"] },
  remove: { options: YES_OPTION, positionals: ["USER"] },
} as const;

const EVENTS = {
  list: {
    options: { gateway: { type: "string" }, type: { type: "string" }, limit: { type: "string" }, ...JSON_OPTION },
    positionals: [],
  },
} as const;

export const parseEventsArgs = (args: readonly string[]) => parseSubcommand("events", EVENTS, "list", args);
export const parseProjectArgs = (args: readonly string[]) => parseSubcommand("project", PROJECT, "list", args);
export const parseMemberArgs = (args: readonly string[]) => parseSubcommand("member", MEMBER, "list", args);

export async function project(ctx: Context, args: ParsedSubcommand<keyof typeof PROJECT>): Promise<number> {
  const api = ctx.api();
  const now = ctx.io.now();
  switch (args.subcommand) {
    case "list": {
      const { projects } = await accounts.listProjects(api);
      if (args.json) return json(ctx, { projects });
      const rows = projects.map((p) => ({
        cells: [p.name, p.role ?? "", p.default_gateway ?? "", formatAge(p.created_at, now)],
      }));
      ctx.printLines(renderTable(["NAME", "ROLE", "DEFAULT GATEWAY", "CREATED"], rows, ctx.style));
      return 0;
    }
    case "create": {
      const created = await accounts.createProject(api, args.positionals[0]!);
      if (args.json) return json(ctx, created);
      ctx.print(`Project ${created.name} created`);
      ctx.print(`Add members: gateplane member add USER [--role admin] -p ${created.name}`);
      return 0;
    }
    case "get": {
      const name = args.positionals[0] ?? ctx.settings().project;
      const found = await accounts.getProject(api, name);
      if (args.json) return json(ctx, found);
      const pairs: [string, string][] = [
        ["Name", found.name],
        ["Your role", found.role ?? ""],
        ["Default gateway", found.default_gateway ?? "none"],
        ["Created", found.created_at],
      ];
      ctx.printLines(renderKeyValues(pairs, ctx.style));
      return 0;
    }
  }
}

export async function member(ctx: Context, args: ParsedSubcommand<keyof typeof MEMBER>): Promise<number> {
  const { project: name } = ctx.settings();
  const api = ctx.api();
  const user = args.positionals[0]!;
  switch (args.subcommand) {
    case "list": {
      const { members } = await accounts.listMembers(api, name);
      if (args.json) return json(ctx, { project: name, members });
      const rows = members.map((m) => ({ cells: [m.user, m.role, formatAge(m.created_at, ctx.io.now())] }));
      ctx.printLines(renderTable(["USER", "ROLE", "ADDED"], rows, ctx.style));
      return 0;
    }
    case "add": {
      // The control plane validates the role and names the field; the default is the least power.
      const set = await accounts.setMember(api, name, user, stringOf(args.options.role) ?? "member");
      if (args.json) return json(ctx, set);
      ctx.print(`${set.user} is a member of ${name} with the ${set.role} role`);
      return 0;
    }
    case "remove": {
      if (!(await confirmed(ctx, args.yes, `Remove ${user} from project ${name}?`))) return 0;
      await accounts.removeMember(api, name, user);
      ctx.print(`${user} removed from ${name}`);
      return 0;
    }
  }
}

/** The project's audit trail: who did what to which gateway, and the gateways' typed events. */
export async function events(ctx: Context, args: ParsedSubcommand<keyof typeof EVENTS>): Promise<number> {
  const { project: name } = ctx.settings();
  const o = args.options;
  const query = { gateway: stringOf(o.gateway), type: stringOf(o.type) };
  const list = await ctx.api().events(name, query, eventsLimit(stringOf(o.limit)));
  if (args.json) return json(ctx, list);
  const now = ctx.io.now();
  const rows = list.events.map((e) => ({
    cells: [formatAge(e.created_at, now), e.gateway_name ?? "", e.type ?? "", e.actor ?? "", e.message],
  }));
  ctx.printLines(renderTable(["TIME", "GATEWAY", "TYPE", "ACTOR", "MESSAGE"], rows, ctx.style));
  return 0;
}

/** `--limit N`: the newest N events (default 100), fetched page by page. */
function eventsLimit(value: string | undefined): number {
  if (value === undefined) return PAGE_LIMIT_DEFAULT;
  if (!/^\d{1,7}$/.test(value) || Number(value) < 1) {
    throw new CliError(`gateplane events: --limit: expected a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const json = (ctx: Context, value: unknown) => {
  ctx.printJson(value);
  return 0;
};
