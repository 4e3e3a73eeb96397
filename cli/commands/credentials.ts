/**
 * @module
 * `gateplane backend [list]|set|unset` and `gateplane dns [get]|set|unset`: the project's cloud
 * backends' credentials and its DNS provider (Cloudflare), stored encrypted by the control plane,
 * which never shows them again. Secrets come from a file (`-` for stdin) or an environment variable
 * named on the command line, never from the command line itself (`ps` shows argv to every user).
 * The control plane validates the credentials and names the field.
 */
import { accounts } from "../accounts-api.ts";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { parseJsonObject, refuseSecretFlags, secretFromEnv, secretFromFile } from "../secrets.ts";
import { renderKeyValues, renderTable } from "../text-table.ts";
import { confirmed } from "./confirm.ts";
import { JSON_OPTION, type ParsedSubcommand, parseSubcommand, stringOf, YES_OPTION } from "./subcommands.ts";

const FILE_OR_ENV = { "credentials-file": { type: "string" }, "credentials-env": { type: "string" } } as const;

const BACKEND = {
  list: { options: JSON_OPTION, positionals: [] },
  set: { options: { ...FILE_OR_ENV, ...JSON_OPTION }, positionals: ["TYPE"] },
  unset: { options: YES_OPTION, positionals: ["TYPE"] },
} as const;

const DNS = {
  get: { options: JSON_OPTION, positionals: ["[PROVIDER]"] },
  set: {
    options: {
      ...FILE_OR_ENV,
      "token-env": { type: "string" },
      "zone-id": { type: "string" },
      "api-endpoint": { type: "string" },
      ...JSON_OPTION,
    },
    positionals: ["PROVIDER"],
  },
  unset: { options: YES_OPTION, positionals: ["PROVIDER"] },
} as const;

const CREDENTIALS_INSTEAD = "give --credentials-file PATH (- for stdin) or --credentials-env NAME";
const BACKEND_SECRET_FLAGS = Object.fromEntries(
  ["--credentials", "--secret-access-key", "--access-key", "--client-secret", "--service-account-key", "--secret"].map(
    (flag) => [flag, CREDENTIALS_INSTEAD],
  ),
);
const DNS_SECRET_FLAGS = Object.fromEntries(
  ["--api-token", "--cloudflare-token", "--credentials", "--secret", "--token"].map((flag) => [
    flag,
    // `--token` would otherwise be taken as the control plane's token and sent to it.
    `give the provider's token with --token-env NAME or --credentials-file PATH (- for stdin)${flag === "--token" ? "; the control plane's own token goes in GATEPLANE_TOKEN" : ""}`,
  ]),
);

/** The one DNS provider there is; `dns get` without one shows it. */
const DEFAULT_PROVIDER = "cloudflare";

export function parseBackendArgs(args: readonly string[]) {
  if (args[0] === "set") refuseSecretFlags("backend set", args, BACKEND_SECRET_FLAGS);
  return parseSubcommand("backend", BACKEND, "list", args);
}

export function parseDnsArgs(args: readonly string[]) {
  if (args[0] === "set") refuseSecretFlags("dns set", args, DNS_SECRET_FLAGS);
  return parseSubcommand("dns", DNS, "get", args);
}

export async function backend(ctx: Context, args: ParsedSubcommand<keyof typeof BACKEND>): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  const type = args.positionals[0]!;
  switch (args.subcommand) {
    case "list": {
      const { backends } = await accounts.listBackends(api, project);
      if (args.json) return json(ctx, { project, backends });
      const rows = backends.map((b) => ({
        cells: [b.type, b.configured ? "yes" : "no", b.updated_at ?? ""],
      }));
      ctx.printLines(renderTable(["TYPE", "CONFIGURED", "UPDATED"], rows, ctx.style));
      return 0;
    }
    case "set": {
      const credentials = await readCredentials(ctx, args, {});
      const saved = await accounts.setBackend(api, project, type, credentials);
      if (args.json) return json(ctx, saved);
      ctx.print(`Credentials of the ${saved.type} backend saved for ${project}`);
      return 0;
    }
    case "unset": {
      const question = `Remove the ${type} backend's credentials from ${project}? Its gateways cannot be changed or deleted without them.`;
      if (!(await confirmed(ctx, args.yes, question))) return 0;
      await accounts.unsetBackend(api, project, type);
      ctx.print(`Credentials of the ${type} backend removed from ${project}`);
      return 0;
    }
  }
}

export async function dns(ctx: Context, args: ParsedSubcommand<keyof typeof DNS>): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  const provider = args.positionals[0] ?? DEFAULT_PROVIDER;
  switch (args.subcommand) {
    case "get": {
      const state = await accounts.getDns(api, project, provider);
      if (args.json) return json(ctx, state);
      const pairs: [string, string][] = [
        ["Provider", state.provider],
        ["Configured", state.configured ? "yes (gateways create their DNS records)" : "no"],
        ["Updated", state.updated_at ?? ""],
      ];
      ctx.printLines(renderKeyValues(pairs, ctx.style));
      return 0;
    }
    case "set": {
      const o = args.options;
      const token = stringOf(o["token-env"]);
      const fields: Record<string, unknown> = {
        ...(token === undefined ? {} : { api_token: secretFromEnv(args.command, "--token-env", token, ctx.io) }),
        ...(o["zone-id"] === undefined ? {} : { zone_id: o["zone-id"] }),
        ...(o["api-endpoint"] === undefined ? {} : { api_endpoint: o["api-endpoint"] }),
      };
      const credentials = await readCredentials(ctx, args, fields);
      const saved = await accounts.setDns(api, project, provider, credentials);
      if (args.json) return json(ctx, saved);
      ctx.print(`${saved.provider} DNS credentials saved for ${project}: its gateways create their DNS records`);
      return 0;
    }
    case "unset": {
      const question = `Remove the ${provider} DNS credentials from ${project}? Gateways stop managing their DNS records.`;
      if (!(await confirmed(ctx, args.yes, question))) return 0;
      await accounts.unsetDns(api, project, provider);
      ctx.print(`${provider} DNS credentials removed from ${project}`);
      return 0;
    }
  }
}

/**
 * The JSON object of `--credentials-file` or `--credentials-env`, with `fields` (from options) on
 * top; with neither, `fields` alone, which must then hold something.
 */
async function readCredentials(
  ctx: Context,
  args: ParsedSubcommand<string>,
  fields: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const file = stringOf(args.options["credentials-file"]);
  const env = stringOf(args.options["credentials-env"]);
  if (file !== undefined && env !== undefined) {
    throw new UsageError(`gateplane ${args.command}: give --credentials-file or --credentials-env, not both`);
  }
  if (file !== undefined) {
    const text = await secretFromFile(args.command, "--credentials-file", file, ctx.io);
    return { ...parseJsonObject(args.command, file === "-" ? "stdin" : file, text), ...fields };
  }
  if (env !== undefined) {
    const text = secretFromEnv(args.command, "--credentials-env", env, ctx.io);
    return { ...parseJsonObject(args.command, env, text), ...fields };
  }
  if (!Object.keys(fields).some((k) => k === "api_token")) {
    const extra = args.command.startsWith("dns") ? " (or --token-env NAME with --zone-id ID)" : "";
    throw new UsageError(
      `gateplane ${args.command}: the credentials are read from --credentials-file PATH (- for stdin) or --credentials-env NAME${extra}, never from the command line`,
    );
  }
  return fields;
}

const json = (ctx: Context, value: unknown) => {
  ctx.printJson(value);
  return 0;
};
