/**
 * @module
 * The CLI as a function: `run(argv, io)` parses, dispatches and renders any failure exactly once,
 * returning the exit status. Nothing below it writes to stderr or exits the process.
 */

import { YamlError } from "../schema/yaml.ts";
import { ACCOUNT_COMMANDS } from "./account-commands.ts";
import type { GlobalValues } from "./args.ts";
import { splitCommandLine } from "./args.ts";
import { acme, parseAcmeArgs } from "./commands/acme.ts";
import { apply, parseApplyArgs } from "./commands/apply.ts";
import { deleteConfiguration, parseDeleteArgs } from "./commands/delete.ts";
import { gateway, parseGatewayArgs } from "./commands/gateway.ts";
import { parseServiceArgs, service } from "./commands/service.ts";
import { parseServiceTokenArgs, serviceToken } from "./commands/service-token.ts";
import { parseWebhookArgs, webhook } from "./commands/webhook.ts";
import { type Context, createContext } from "./context.ts";
import { CliError, UsageError } from "./errors.ts";
import { escapeLines } from "./escape.ts";
import { HELP, version } from "./help.ts";
import type { Io } from "./io.ts";
import { LineReader } from "./prompt.ts";

type Command = (io: Io, global: GlobalValues, lines: LineReader, args: string[]) => Promise<number>;

/** Parses first (so `--help` needs no settings), then runs with connection options merged in. */
const COMMANDS: Record<string, Command> = {
  apply: (io, global, lines, args) => {
    const values = parseApplyArgs(args);
    return values.help ? help(io, "apply") : apply(withGlobals(io, global, values, lines), values);
  },
  delete: (io, global, lines, args) => {
    const values = parseDeleteArgs(args);
    return values.help ? help(io, "delete") : deleteConfiguration(withGlobals(io, global, values, lines), values);
  },
  gateway: (io, global, lines, args) => {
    const parsed = parseGatewayArgs(args);
    return parsed.help ? help(io, "gateway") : gateway(withGlobals(io, global, parsed.global, lines), parsed);
  },
  service: (io, global, lines, args) => {
    const parsed = parseServiceArgs(args);
    return parsed.help ? help(io, "service") : service(withGlobals(io, global, parsed.global, lines), parsed);
  },
  webhook: (io, global, lines, args) => {
    const parsed = parseWebhookArgs(args);
    return parsed.help ? help(io, "webhook") : webhook(withGlobals(io, global, parsed.global, lines), parsed);
  },
  "service-token": (io, global, lines, args) => {
    const parsed = parseServiceTokenArgs(args);
    return parsed.help
      ? help(io, "service-token")
      : serviceToken(withGlobals(io, global, parsed.global, lines), parsed);
  },
  acme: (io, global, lines, args) => {
    const parsed = parseAcmeArgs(args);
    return parsed.help ? help(io, "acme") : acme(withGlobals(io, global, parsed.global, lines), parsed);
  },
  ...Object.fromEntries(
    Object.entries(ACCOUNT_COMMANDS).map(([name, c]): [string, Command] => [
      name,
      (io, global, lines, args) => {
        const parsed = c.parse(args);
        const ctx = parsed.help ? null : withGlobals(io, global, parsed.global, lines);
        return ctx ? c.run(ctx, parsed as never) : help(io, name as keyof typeof HELP);
      },
    ]),
  ),
};

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const lines = new LineReader(io.stdin);
  try {
    const { global, command, rest } = splitCommandLine(argv);
    if (global.version) {
      io.stdout.write(`gateplane ${version()}\n`);
      return 0;
    }
    if (command === null) return help(io, "main");
    if (global.help) return help(io, command in COMMANDS ? (command as keyof typeof HELP) : "main");
    const handler = COMMANDS[command];
    if (!handler) throw new UsageError(`gateplane: unknown command '${command}' (see gateplane --help)`);
    return await handler(io, global, lines, rest);
  } catch (e) {
    return report(e, io);
  } finally {
    lines.close();
  }
}

function withGlobals(io: Io, global: GlobalValues, values: GlobalValues, lines: LineReader): Context {
  // Options after the command win over the same options before it, as the later word usually does.
  const merged: GlobalValues = {
    "api-url": values["api-url"] ?? global["api-url"],
    token: values.token ?? global.token,
    project: values.project ?? global.project,
  };
  return createContext(io, merged, lines);
}

async function help(io: Io, topic: keyof typeof HELP): Promise<number> {
  io.stdout.write(`${HELP[topic]}\n`);
  return 0;
}

function report(e: unknown, io: Io): number {
  if (e instanceof CliError || e instanceof YamlError) {
    // One line per problem (the API joins a body's field issues with newlines too); anything else
    // that could drive the terminal is shown escaped.
    io.stderr.write(`${escapeLines(e.message)}\n`);
    return e instanceof CliError ? e.exitCode : 1;
  }
  const detail = io.env.GATEPLANE_DEBUG && e instanceof Error && e.stack ? e.stack : String(e);
  const shown = escapeLines(detail.replace(/\n/g, io.env.GATEPLANE_DEBUG ? "\n" : " "));
  io.stderr.write(`gateplane: unexpected error: ${shown}\n`);
  return 1;
}
