/**
 * @module
 * Loads a `*.dstack.yml` configuration (`type: gateway` or `type: service`) and validates it before
 * anything is sent, reporting each problem at the place in the file where it has to be fixed. The
 * same positions serve errors the control plane reports later with a `field`.
 */
import { readFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { type GatewayConfiguration, parseGatewayConfiguration } from "../schema/gateway.ts";
import {
  describeType,
  type FieldIssue,
  formatIssue,
  isMapping,
  type PathSegment,
  ValidationError,
} from "../schema/issues.ts";
import { parseServiceConfiguration, type ServiceConfiguration } from "../schema/service.ts";
import { parseYamlFile, type YamlFile } from "../schema/yaml.ts";
import { CliError } from "./errors.ts";

export const CONFIGURATION_SUFFIX = ".dstack.yml";
export const CONFIGURATION_TYPES = ["gateway", "service"] as const;
export type ConfigurationType = (typeof CONFIGURATION_TYPES)[number];

interface LoadedFile {
  /** As the user wrote it: shown in the plan and sent as `configuration_path`. */
  path: string;
  /** The document as written (plus overrides), which is what the control plane receives. */
  raw: Record<string, unknown>;
  /** `path:line:col: field: message` for a problem with `issue.path` (e.g. one the control plane found). */
  describe(issue: FieldIssue): string;
}

export interface GatewayFile extends LoadedFile {
  type: "gateway";
  /** The document validated, with defaults applied. */
  configuration: GatewayConfiguration;
}

export interface ServiceFile extends LoadedFile {
  type: "service";
  configuration: ServiceConfiguration;
}

export type ConfigurationFile = GatewayFile | ServiceFile;

export interface ConfigurationOverrides {
  /** `-n/--name`. */
  name?: string | undefined;
}

/** dstack finds configurations by this suffix; keeping it lets the same files work with both tools. */
export function checkConfigurationFilename(path: string): void {
  if (!basename(path).endsWith(CONFIGURATION_SUFFIX)) {
    throw new CliError(`${path}: configuration files must be named *.dstack.yml (e.g. gateway.dstack.yml)`);
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
  const describe = (issue: FieldIssue) => locateIssue(issue, path, source, overrides).text;
  const fail = (issues: FieldIssue[]): never => {
    // In file order: that is how people read and fix them.
    const located = issues.map((issue) => locateIssue(issue, path, source, overrides));
    located.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new CliError(located.map((l) => l.text).join("\n"));
  };
  if (!isMapping(written)) {
    const expected = `a mapping with type: ${CONFIGURATION_TYPES.join(" or ")}`;
    return fail([{ path: [], message: `expected ${expected}, got ${describeType(written)}` }]);
  }
  const raw: Record<string, unknown> = { ...written };
  // Which schema applies is decided by `type` alone, so that its error is the only one reported.
  const type = raw.type;
  if (typeof type !== "string" || !(CONFIGURATION_TYPES as readonly string[]).includes(type)) {
    return fail([{ path: ["type"], message: `expected one of ${CONFIGURATION_TYPES.join(", ")}` }]);
  }
  if (overrides.name !== undefined) raw.name = overrides.name;
  try {
    return type === "service"
      ? { type, path, raw, describe, configuration: parseServiceConfiguration(raw) }
      : { type: "gateway", path, raw, describe, configuration: parseGatewayConfiguration(raw) };
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return fail(e.issues);
  }
}

/**
 * `rate_limits[0].rps` → `["rate_limits", 0, "rps"]`: the inverse of `formatPath`, for the API's
 * `error.field`. A field given relative to the request body (`plan.spec.configuration.https`) is
 * taken relative to the configuration.
 */
export function parseFieldPath(field: string): PathSegment[] {
  const relative = field.replace(/^(plan\.)?spec\.configuration\./, "");
  const path: PathSegment[] = [];
  for (const m of relative.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) path.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return path;
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
