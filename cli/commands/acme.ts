/**
 * @module
 * `gateplane acme get|set|unset`: the project's ACME settings (CA directory, External Account
 * Binding, contact address). The HMAC key is read from the environment, never from the command
 * line (where `ps` and shell history would keep it), and the control plane never shows it again.
 */
import type { ProjectAcmeInput } from "../api-client.ts";
import { connectionOf, type GlobalValues, parseCommandArgs, takePositionals } from "../args.ts";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";

/** Where `set --eab-kid` takes the HMAC key from. */
export const EAB_HMAC_KEY_ENV = "GATEPLANE_ACME_EAB_HMAC_KEY";

const SUBCOMMANDS = {
  get: { json: { type: "boolean" } },
  set: { directory: { type: "string" }, "eab-kid": { type: "string" }, email: { type: "string" } },
  unset: {},
} as const;
type Subcommand = keyof typeof SUBCOMMANDS;

export interface AcmeArgs {
  subcommand: Subcommand;
  directory: string | undefined;
  eabKid: string | undefined;
  email: string | undefined;
  json: boolean;
  help: boolean;
  global: GlobalValues;
}

export function parseAcmeArgs(args: readonly string[]): AcmeArgs {
  const first = args[0];
  const subcommand: Subcommand = first === undefined || first.startsWith("-") ? "get" : (first as Subcommand);
  if (!(subcommand in SUBCOMMANDS)) {
    throw new UsageError(`gateplane acme: unknown command '${first}'; expected get, set or unset`);
  }
  const rest = first === undefined || first.startsWith("-") ? args : args.slice(1);
  const command = `acme ${subcommand}`;
  const { values, positionals } = parseCommandArgs(command, rest, SUBCOMMANDS[subcommand]);
  takePositionals(command, positionals, []);
  const o = values as Record<string, string | boolean | undefined>;
  const str = (x: string | boolean | undefined) => (typeof x === "string" ? x : undefined);
  return {
    subcommand,
    directory: str(o.directory),
    eabKid: str(o["eab-kid"]),
    email: str(o.email),
    json: o.json === true,
    help: o.help === true,
    global: connectionOf(o),
  };
}

export async function acme(ctx: Context, args: AcmeArgs): Promise<number> {
  const { project } = ctx.settings();
  const api = ctx.api();
  switch (args.subcommand) {
    case "get": {
      const view = await api.getAcme(project);
      if (args.json) {
        ctx.printJson(view);
        return 0;
      }
      ctx.printLines([
        `directory  ${view.directory_url ?? "Let's Encrypt (default)"}`,
        `eab        ${view.has_eab ? `kid ${view.eab_kid} (HMAC key set)` : "none"}`,
        `email      ${view.email ?? "none"}`,
      ]);
      return 0;
    }
    case "set": {
      const settings: ProjectAcmeInput = {
        directory_url: args.directory ?? null,
        email: args.email ?? null,
        eab: null,
      };
      if (args.eabKid !== undefined) {
        const hmacKey = ctx.io.env[EAB_HMAC_KEY_ENV];
        if (!hmacKey) {
          throw new UsageError(`gateplane acme set: --eab-kid needs the HMAC key in ${EAB_HMAC_KEY_ENV}`);
        }
        settings.eab = { kid: args.eabKid, hmac_key: hmacKey };
      }
      const view = await api.putAcme(project, settings);
      ctx.print(
        `ACME settings of ${project} saved: ${view.directory_url ?? "Let's Encrypt"}` +
          (view.has_eab ? `, EAB kid ${view.eab_kid}` : ""),
      );
      return 0;
    }
    case "unset": {
      await api.deleteAcme(project);
      ctx.print(`ACME settings of ${project} removed: Let's Encrypt without EAB`);
      return 0;
    }
  }
}
