/**
 * @module
 * `gateplane user [whoami]|list|create` and `gateplane token list|create|revoke`: users and their API tokens
 * (`gpt_…`). A token is shown once, when it is created; the control plane keeps only its hash.
 * Creating a user needs a global admin token; anyone may create and revoke tokens of their own.
 */
import { accounts, type TokenCreated } from "../accounts-api.ts";
import { formatAge } from "../age.ts";
import type { Context } from "../context.ts";
import { renderTable } from "../text-table.ts";
import { confirmed } from "./confirm.ts";
import { JSON_OPTION, type ParsedSubcommand, parseSubcommand, stringOf, YES_OPTION } from "./subcommands.ts";

const USER = {
  whoami: { options: JSON_OPTION, positionals: [] },
  list: { options: JSON_OPTION, positionals: [] },
  create: { options: JSON_OPTION, positionals: ["NAME"] },
} as const;

const TOKEN = {
  list: { options: { user: { type: "string" }, ...JSON_OPTION }, positionals: [] },
  create: { options: { user: { type: "string" }, description: { type: "string" }, ...JSON_OPTION }, positionals: [] },
  revoke: { options: YES_OPTION, positionals: ["ID"] },
} as const;

export const parseUserArgs = (args: readonly string[]) => parseSubcommand("user", USER, "whoami", args);
/** A bare `gateplane token` lists: it must not mint a credential. */
export const parseTokenArgs = (args: readonly string[]) => parseSubcommand("token", TOKEN, "list", args);

export async function user(ctx: Context, args: ParsedSubcommand<keyof typeof USER>): Promise<number> {
  const api = ctx.api();
  if (args.subcommand === "whoami") {
    const me = await accounts.me(api);
    if (args.json) ctx.printJson(me);
    else ctx.print(`${me.user}${me.global_admin ? " (global admin)" : ""}`);
    return 0;
  }
  if (args.subcommand === "list") {
    const { users } = await accounts.listUsers(api);
    if (args.json) return json(ctx, { users });
    const rows = users.map((u) => ({
      cells: [u.name, u.global_admin ? "✓" : "", formatAge(u.created_at, ctx.io.now())],
    }));
    ctx.printLines(renderTable(["NAME", "GLOBAL ADMIN", "CREATED"], rows, ctx.style));
    return 0;
  }
  const created = await accounts.createUser(api, args.positionals[0]!);
  if (args.json) return json(ctx, created);
  ctx.print(`User ${created.user} created with an API token (id ${created.id})`);
  printToken(ctx, created);
  ctx.print(`Add them to a project: gateplane member add ${created.user} [--role admin]`);
  return 0;
}

export async function token(ctx: Context, args: ParsedSubcommand<keyof typeof TOKEN>): Promise<number> {
  const api = ctx.api();
  if (args.subcommand === "list") {
    const owner = stringOf(args.options.user) ?? (await accounts.me(api)).user;
    const list = await accounts.listTokens(api, owner);
    if (args.json) return json(ctx, list);
    const now = ctx.io.now();
    const age = (iso: string | null) => (iso ? formatAge(iso, now) : "");
    const rows = list.tokens.map((t) => ({
      cells: [t.id, t.description ?? "", age(t.created_at), age(t.last_used_at) || "never", age(t.revoked_at)],
      secondary: t.revoked_at !== null,
    }));
    ctx.printLines(renderTable(["ID", "DESCRIPTION", "CREATED", "LAST USED", "REVOKED"], rows, ctx.style));
    return 0;
  }
  if (args.subcommand === "create") {
    const owner = stringOf(args.options.user) ?? (await accounts.me(api)).user;
    const created = await accounts.createToken(api, owner, stringOf(args.options.description));
    if (args.json) return json(ctx, created);
    ctx.print(`Token ${created.id} created for ${created.user}`);
    printToken(ctx, created);
    return 0;
  }
  const id = args.positionals[0]!;
  if (!(await confirmed(ctx, args.yes, `Revoke the API token ${id}? Whatever uses it is refused from now on.`))) {
    return 0;
  }
  await accounts.revokeToken(api, id);
  ctx.print(`Token ${id} revoked`);
  return 0;
}

function printToken(ctx: Context, created: TokenCreated): void {
  ctx.print(`API token (shown once; only its hash is kept): ${created.token}`);
}

const json = (ctx: Context, value: unknown) => {
  ctx.printJson(value);
  return 0;
};
