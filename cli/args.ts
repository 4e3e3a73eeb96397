/**
 * @module
 * Command-line parsing on top of `node:util` parseArgs. Connection options (`--api-url`, `--token`,
 * `-p/--project`) are accepted both before the command and among its own options. `--url` is never
 * the control plane's: it is a resource's own URL (`service replica add`, `webhook add|update`).
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { UsageError } from "./errors.ts";

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

export const GLOBAL_OPTIONS = {
  "api-url": { type: "string" },
  token: { type: "string" },
  project: { type: "string", short: "p" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const satisfies OptionSpecs;

export interface GlobalValues {
  /** The control plane's URL. */
  "api-url"?: string | undefined;
  token?: string | undefined;
  project?: string | undefined;
  help?: boolean | undefined;
  version?: boolean | undefined;
}

export interface CommandLine {
  global: GlobalValues;
  /** The first word that is not an option, or `null` for a bare `gateplane [--help|--version]`. */
  command: string | null;
  rest: string[];
}

/** Splits `[global options] command [rest]`; anything but a global option before the command is an error. */
export function splitCommandLine(argv: readonly string[]): CommandLine {
  const { tokens } = parseArgs({
    args: [...argv],
    options: GLOBAL_OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const global: GlobalValues = {};
  for (const token of tokens) {
    if (token.kind === "positional") {
      return { global, command: token.value, rest: argv.slice(token.index + 1) };
    }
    if (token.kind === "option-terminator") break;
    if (token.name === "url") throw new UsageError(`gateplane: ${URL_IS_NOT_GLOBAL}`);
    if (!(token.name in GLOBAL_OPTIONS)) {
      throw new UsageError(`gateplane: unknown option '${token.rawName}' (see gateplane --help)`);
    }
    const spec = GLOBAL_OPTIONS[token.name as keyof typeof GLOBAL_OPTIONS];
    if (spec.type === "string" && token.value === undefined) {
      throw new UsageError(`gateplane: option '${token.rawName}' needs a value`);
    }
    (global as Record<string, unknown>)[token.name] = spec.type === "string" ? token.value : true;
  }
  return { global, command: null, rest: [] };
}

/** `--url` was the control plane's URL once; `service replica add` and `webhook` use it for their own. */
export const URL_IS_NOT_GLOBAL =
  "--url is not a connection option: give the control plane's URL with --api-url URL (or GATEPLANE_URL)";

/** The connection options among a command's parsed values, for `run`'s merge with those before it. */
export function connectionOf(values: Record<string, unknown>): GlobalValues {
  const str = (x: unknown) => (typeof x === "string" ? x : undefined);
  return { "api-url": str(values["api-url"]), token: str(values.token), project: str(values.project) };
}

/**
 * Parses a command's arguments (its own options plus the global ones). Errors name the command and
 * point to its help.
 */
export function parseCommandArgs<const O extends OptionSpecs>(command: string, args: readonly string[], options: O) {
  const config = {
    args: [...args],
    options: { ...GLOBAL_OPTIONS, ...options },
    allowPositionals: true,
    strict: true,
  } as const;
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(`gateplane ${command}: ${describeParseError(e)} (see gateplane ${command} --help)`);
  }
}

/** Rejects positionals beyond the `names` a command takes. */
export function takePositionals(command: string, positionals: readonly string[], names: readonly string[]): string[] {
  const extra = positionals[names.length];
  if (extra !== undefined) throw new UsageError(`gateplane ${command}: unexpected argument '${extra}'`);
  return positionals.slice(0, names.length);
}

/** Keeps parseArgs' wording but drops its advice about `--`, which only confuses here. */
function describeParseError(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown?.[1] === "--url") return URL_IS_NOT_GLOBAL;
  if (unknown) return `unknown option '${unknown[1]}'`;
  return message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, "");
}
