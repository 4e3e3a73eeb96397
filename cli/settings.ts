/**
 * @module
 * Where the CLI finds its control plane: each of url, token and project comes from the first of
 * flag, environment variable, settings file. The settings file is the first that exists of
 * `$GATEPLANE_CONFIG`, the nearest `.gateplane/config.json` above the working directory (what
 * `npm start` writes into the checkout) and `~/.gateplane/config.json`.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { CliError } from "./errors.ts";
import type { Io } from "./io.ts";

export interface Settings {
  /** Base URL of the control plane, without a trailing slash (`http://127.0.0.1:8787`). */
  url: string;
  token: string;
  project: string;
}

export interface SettingsFlags {
  url?: string | undefined;
  token?: string | undefined;
  project?: string | undefined;
}

type SettingsFile = Partial<Settings> & { path: string };

const KEYS = ["url", "token", "project"] as const;
const ENV: Record<(typeof KEYS)[number], string> = {
  url: "GATEPLANE_URL",
  token: "GATEPLANE_TOKEN",
  project: "GATEPLANE_PROJECT",
};

/**
 * `needProject: false` is for the commands that are not about one project (`user`, `token`,
 * `project list|create`): a missing project is then `""` rather than an error.
 */
export function resolveSettings(
  flags: SettingsFlags,
  io: Pick<Io, "env" | "cwd" | "homedir">,
  needProject = true,
): Settings {
  const fromEnv = (key: (typeof KEYS)[number]) => nonEmpty(io.env[ENV[key]]);
  // The file is read only when a flag or variable leaves something open, so a broken file in some
  // parent directory cannot get in the way of an explicit command line.
  let file: SettingsFile | null | undefined;
  const fromFile = (key: (typeof KEYS)[number]) => {
    if (file === undefined) file = findSettingsFile(io);
    return nonEmpty(file?.[key]);
  };
  const values = Object.fromEntries(
    KEYS.map((key) => [key, nonEmpty(flags[key]) ?? fromEnv(key) ?? fromFile(key)] as const),
  ) as Record<(typeof KEYS)[number], string | undefined>;

  const missing = KEYS.filter((key) => values[key] === undefined && (needProject || key !== "project"));
  if (missing.length > 0) {
    const names = listOf(missing);
    const where = file ? ` (${file.path} does not set ${missing.length > 1 ? "them" : "it"})` : "";
    throw new CliError(
      `no control plane ${names} configured${where}: run \`npm start\` in the gateplane checkout, ` +
        "which writes .gateplane/config.json, or pass --api-url, --token and --project " +
        "(or set GATEPLANE_URL, GATEPLANE_TOKEN and GATEPLANE_PROJECT)",
    );
  }
  return {
    url: checkUrl(
      values.url!,
      flags.url !== undefined ? "--api-url" : fromEnv("url") ? ENV.url : (file?.path ?? "url"),
    ),
    token: values.token!,
    project: values.project ?? "",
  };
}

/** The settings file in effect, or `null` if there is none. */
export function findSettingsFile(io: Pick<Io, "env" | "cwd" | "homedir">): SettingsFile | null {
  const explicit = nonEmpty(io.env.GATEPLANE_CONFIG);
  if (explicit) {
    const path = resolve(io.cwd, explicit);
    if (!isFile(path)) throw new CliError(`GATEPLANE_CONFIG points to ${path}, which does not exist`);
    return readSettingsFile(path);
  }
  for (let dir = resolve(io.cwd); ; dir = dirname(dir)) {
    const path = join(dir, ".gateplane", "config.json");
    if (isFile(path)) return readSettingsFile(path);
    if (dirname(dir) === dir) break;
  }
  const home = join(io.homedir, ".gateplane", "config.json");
  return isFile(home) ? readSettingsFile(home) : null;
}

function readSettingsFile(path: string): SettingsFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CliError(`${path}: not valid JSON settings: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CliError(`${path}: expected a JSON object with url, token and project`);
  }
  const out: SettingsFile = { path };
  for (const key of KEYS) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") throw new CliError(`${path}: "${key}" must be a string`);
    out[key] = value;
  }
  return out;
}

function checkUrl(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`${source}: "${raw}" is not a URL; expected something like http://127.0.0.1:8787`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`${source}: "${raw}" must be an http:// or https:// URL`);
  }
  return raw.replace(/\/+$/, "");
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const listOf = (words: readonly string[]) =>
  words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value.trim();
