/**
 * @module
 * Where secrets (cloud credentials, DNS API tokens, webhook signing secrets) come from: an
 * environment variable named on the command line, or a file (`-` for stdin). Never the value on
 * the command line itself: argv is visible to every user of the machine in `ps`, and it stays in
 * shell history. A flag that would carry one is refused before anything else is parsed.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, UsageError } from "./errors.ts";
import type { Io } from "./io.ts";

/**
 * Refuses `--flag VALUE` / `--flag=VALUE` for each secret-carrying flag a user might reach for,
 * saying where the secret goes instead. Scans the raw words so the refusal wins over any other
 * parse error (the value must not be echoed back either).
 */
export function refuseSecretFlags(command: string, args: readonly string[], flags: Record<string, string>): void {
  for (const word of args) {
    if (word === "--") break;
    const name = word.split("=", 1)[0]!;
    const instead = flags[name];
    if (instead !== undefined) {
      throw new UsageError(
        `gateplane ${command}: ${name} would put a secret on the command line, where other users see it (ps) and shell history keeps it; ${instead}`,
      );
    }
  }
}

/** The value of the environment variable `name`, which must be set and non-empty. */
export function secretFromEnv(command: string, option: string, name: string, io: Pick<Io, "env">): string {
  // Someone who passed the secret itself where its variable's name goes must not see it echoed.
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || name.length > 64) {
    throw new UsageError(`gateplane ${command}: ${option} takes the name of an environment variable, not a value`);
  }
  const value = io.env[name];
  if (value === undefined || value === "") {
    const shown = /^[A-Z_][A-Z0-9_]*$/.test(name) ? name : "named";
    throw new UsageError(`gateplane ${command}: ${option}: the environment variable ${shown} is not set`);
  }
  return value;
}

/** The whole of `path` (relative to the working directory), or of stdin for `-`. */
export async function secretFromFile(
  command: string,
  option: string,
  path: string,
  io: Pick<Io, "stdin" | "cwd">,
): Promise<string> {
  if (path === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString("utf8");
  }
  const full = resolve(io.cwd, path);
  try {
    return readFileSync(full, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(e);
    throw new CliError(`gateplane ${command}: ${option} ${full}: ${reason}`);
  }
}

/** A JSON object from a credentials file or variable; `where` names it in errors. */
export function parseJsonObject(command: string, where: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CliError(`gateplane ${command}: ${where}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError(`gateplane ${command}: ${where}: expected a JSON object of credentials`);
  }
  return value as Record<string, unknown>;
}
