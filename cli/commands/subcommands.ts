/**
 * @module
 * The argument grammar shared by `user`, `token`, `project`, `member`, `backend` and `dns`:
 * `gateplane GROUP [SUBCOMMAND] [POSITIONALS] [options]`, where a missing subcommand is the group's
 * default (`list` or `get`), and every subcommand takes the connection options.
 */
import type { ParseArgsConfig } from "node:util";
import { connectionOf, type GlobalValues, parseCommandArgs, takePositionals } from "../args.ts";
import { UsageError } from "../errors.ts";

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

export interface SubcommandSpec {
  options: OptionSpecs;
  /** Required positionals, then `[OPTIONAL]` ones in brackets. */
  positionals: readonly string[];
}

export interface ParsedSubcommand<S extends string> {
  subcommand: S;
  /** `GROUP SUBCOMMAND`, for messages. */
  command: string;
  positionals: (string | undefined)[];
  options: Record<string, string | boolean | undefined>;
  help: boolean;
  json: boolean;
  yes: boolean;
  global: GlobalValues;
}

export const JSON_OPTION = { json: { type: "boolean" } } as const;
export const YES_OPTION = { yes: { type: "boolean", short: "y" } } as const;

export function parseSubcommand<S extends string>(
  group: string,
  specs: Record<S, SubcommandSpec>,
  fallback: S,
  args: readonly string[],
): ParsedSubcommand<S> {
  const first = args[0];
  const explicit = first !== undefined && !first.startsWith("-");
  // A bare word that is not a subcommand is the default's positional only when the default takes one.
  if (explicit && !(first in specs) && specs[fallback].positionals.length === 0) {
    throw new UsageError(`gateplane ${group}: unknown command '${first}'; expected ${Object.keys(specs).join(", ")}`);
  }
  const named = explicit && first in specs;
  const subcommand = named ? (first as S) : fallback;
  const command = `${group} ${subcommand}`;
  const spec = specs[subcommand];
  const { values, positionals } = parseCommandArgs(command, named ? args.slice(1) : args, spec.options);
  const options = values as Record<string, string | boolean | undefined>;
  const names = spec.positionals;
  const taken = takePositionals(command, positionals, names);
  const help = options.help === true;
  const missing = names.slice(positionals.length).filter((n) => !n.startsWith("["));
  if (!help && missing.length > 0) {
    throw new UsageError(
      `gateplane ${command}: ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} required (see gateplane ${group} --help)`,
    );
  }
  return {
    subcommand,
    command,
    positionals: names.map((_, i) => taken[i]),
    options,
    help,
    json: options.json === true,
    yes: options.yes === true,
    global: connectionOf(options),
  };
}

export const stringOf = (value: string | boolean | undefined): string | undefined =>
  typeof value === "string" ? value : undefined;
