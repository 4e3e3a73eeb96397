/**
 * @module
 * Loads a `*.dstack.yml` gateway configuration and validates it before anything is sent, reporting
 * each problem at the place in the file where it has to be fixed.
 */
import { readFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { type GatewayConfiguration, parseGatewayConfiguration } from "../schema/gateway.ts";
import { type FieldIssue, formatIssue, ValidationError } from "../schema/issues.ts";
import { parseYamlFile, type YamlFile } from "../schema/yaml.ts";
import { CliError } from "./errors.ts";

export const CONFIGURATION_SUFFIX = ".dstack.yml";

export interface ConfigurationFile {
  /** As the user wrote it: shown in the plan and sent as `configuration_path`. */
  path: string;
  /** The document as written (plus overrides), which is what the control plane receives. */
  raw: Record<string, unknown>;
  /** The same, validated and with defaults applied. */
  configuration: GatewayConfiguration;
}

export interface ConfigurationOverrides {
  /** `-n/--name`. */
  name?: string | undefined;
}

/** dstack finds configurations by this suffix; keeping it lets the same files work with both tools. */
export function checkConfigurationFilename(path: string): void {
  if (!basename(path).endsWith(CONFIGURATION_SUFFIX)) {
    throw new CliError(`${path}: gateway configuration files must be named *.dstack.yml (e.g. gateway.dstack.yml)`);
  }
}

export function loadConfigurationFile(
  path: string,
  cwd: string,
  overrides: ConfigurationOverrides = {},
): ConfigurationFile {
  checkConfigurationFilename(path);
  const text = readText(path, resolve(cwd, path));
  const source = parseYamlFile(text, path);
  const written = source.value;
  const raw =
    written !== null && typeof written === "object" && !Array.isArray(written)
      ? { ...(written as Record<string, unknown>) }
      : written;
  if (overrides.name !== undefined && raw !== null && typeof raw === "object") {
    (raw as Record<string, unknown>).name = overrides.name;
  }
  try {
    const configuration = parseGatewayConfiguration(raw);
    return { path, raw: raw as Record<string, unknown>, configuration };
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    // In file order: that is how people read and fix them.
    const located = e.issues.map((issue) => locateIssue(issue, path, source, overrides));
    located.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new CliError(located.map((l) => l.text).join("\n"));
  }
}

interface LocatedIssue {
  text: string;
  line: number;
  col: number;
}

function locateIssue(
  issue: FieldIssue,
  path: string,
  source: YamlFile,
  overrides: ConfigurationOverrides,
): LocatedIssue {
  // The name came from the command line, so the file's `name:` line is not where the fix goes.
  if (overrides.name !== undefined && issue.path.length === 1 && issue.path[0] === "name") {
    return { text: `-n/--name: ${issue.message}`, line: 0, col: 0 };
  }
  // Pointing at an unknown key beats pointing at its (perfectly fine) value.
  const target = issue.message === "unknown field" ? "key" : "value";
  const at = source.locate(issue.path, target);
  return at
    ? { text: `${path}:${at.line}:${at.col}: ${formatIssue(issue)}`, ...at }
    : { text: `${path}: ${formatIssue(issue)}`, line: 0, col: 0 };
}

function readText(shown: string, absolute: string): string {
  try {
    return readFileSync(absolute, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CliError(`${shown}: no such file`);
    if (code === "EISDIR") throw new CliError(`${shown}: is a directory, not a configuration file`);
    throw new CliError(`${shown}: ${(e as Error).message}`);
  }
}
