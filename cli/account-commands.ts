/**
 * @module
 * The account commands (`user`, `token`, `project`, `member`, `backend`, `dns`, `events`) as one table for
 * `run.ts`'s dispatcher: each parses its arguments, then runs with the connection options merged.
 */
import type { GlobalValues } from "./args.ts";
import { backend, dns, parseBackendArgs, parseDnsArgs } from "./commands/credentials.ts";
import { events, member, parseEventsArgs, parseMemberArgs, parseProjectArgs, project } from "./commands/project.ts";
import type { ParsedSubcommand } from "./commands/subcommands.ts";
import { parseTokenArgs, parseUserArgs, token, user } from "./commands/user.ts";
import type { Context } from "./context.ts";

interface AccountCommand {
  parse(args: readonly string[]): ParsedSubcommand<string> & { help: boolean; global: GlobalValues };
  run(ctx: Context, parsed: never): Promise<number>;
}

export const ACCOUNT_COMMANDS: Record<string, AccountCommand> = {
  user: { parse: parseUserArgs, run: user },
  token: { parse: parseTokenArgs, run: token },
  project: { parse: parseProjectArgs, run: project },
  member: { parse: parseMemberArgs, run: member },
  backend: { parse: parseBackendArgs, run: backend },
  dns: { parse: parseDnsArgs, run: dns },
  events: { parse: parseEventsArgs, run: events },
};
