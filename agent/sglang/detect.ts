/**
 * @module
 * Is the SGLang Model Gateway installed on this host, and how is it started? Tried in order:
 * 1. the operator's override (`--sglang-router-command`, also how tests run the fake);
 * 2. the `sgl-model-gateway` binary on PATH (the Rust build), then `smg` (`smg launch`);
 * 3. `python -m sglang_router.launch_router` with the cloud-init venv's interpreter
 *    (`$GATEPLANE_SGLANG_ROUTER_VENV/bin/python3`), then `python3` on PATH — the module must be importable.
 * Not found is an answer, not an error: services then run on the built-in balancer, reported as such.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import path from "node:path";

export type RouterInstallation =
  | { installed: true; command: string[]; source: string }
  | { installed: false; reason: string };

export const NOT_INSTALLED = "sglang router not installed on this host";

export interface DetectOptions {
  /** The operator's launch command (program and leading arguments); skips probing when set. */
  override?: string[] | null;
  env?: NodeJS.ProcessEnv;
}

async function onPath(name: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether `python` can import the launcher (find_spec: nothing of the router runs). */
function hasModule(python: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const probe =
    "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('sglang_router.launch_router') else 1)";
  return new Promise((resolve) => {
    execFile(python, ["-c", probe], { env, timeout: 15_000 }, (error) => resolve(error === null));
  });
}

export async function detectSglangRouter(options: DetectOptions = {}): Promise<RouterInstallation> {
  const env = options.env ?? process.env;
  if (options.override && options.override.length > 0) {
    return { installed: true, command: options.override, source: "--sglang-router-command" };
  }
  for (const [binary, args] of [
    ["sgl-model-gateway", []],
    ["smg", ["launch"]],
  ] as const) {
    const found = await onPath(binary, env);
    if (found) return { installed: true, command: [found, ...args], source: found };
  }
  const venv = env.GATEPLANE_SGLANG_ROUTER_VENV;
  const pythons = [...(venv ? [path.join(venv, "bin", "python3")] : []), "python3"];
  for (const python of pythons) {
    if (await hasModule(python, env)) {
      return {
        installed: true,
        command: [python, "-m", "sglang_router.launch_router"],
        source: `${python} -m sglang_router.launch_router`,
      };
    }
  }
  return { installed: false, reason: NOT_INSTALLED };
}

/** Every generation of the router offers these (sglang-router v0.1 on). */
export const CLASSIC_POLICIES: readonly string[] = ["random", "round_robin", "cache_aware", "power_of_two"];

/**
 * The `--policy` choices in a router's `--help`: argparse prints `--policy {random,round_robin,…}`,
 * clap `[possible values: random, round_robin, …]`. Null when the help names none.
 */
export function parsePolicyChoices(help: string): string[] | null {
  const at = help.search(/--policy\b/);
  if (at < 0) return null;
  const segment = help.slice(at, at + 1000);
  const found = /\{([a-z_,\s]+)\}/.exec(segment) ?? /possible values:\s*([a-z_,\s]+)\]/.exec(segment);
  if (!found) return null;
  const choices = found[1]!
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return choices.length > 0 ? choices : null;
}

/** What the installed router's `--help` says it takes. */
export interface RouterHelp {
  /** Its `--policy` choices (null: the help names none, or could not be read). */
  policies: string[] | null;
  /** Every long flag the help names (`--least-load-kv-pressure-weight`, …). */
  flags: ReadonlySet<string>;
}

/** The `--policy` choices and the long flags of a router's help (argparse's or clap's). */
export function parseRouterHelp(help: string): RouterHelp {
  return { policies: parsePolicyChoices(help), flags: new Set(help.match(/--[a-z0-9][a-z0-9-]*/g) ?? []) };
}

/**
 * Reads the installed router's `--help` (SMG added least_load and its `--least-load-*` tunables in
 * 2026; the last PyPI `sglang-router` has the classic four policies); no policies and no flags when
 * the help cannot be read.
 */
export function routerHelp(command: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<RouterHelp> {
  const [program, ...args] = command;
  return new Promise((resolve) => {
    execFile(program!, [...args, "--help"], { env, timeout: 15_000, maxBuffer: 4 * 1024 * 1024 }, (_error, stdout) => {
      resolve(parseRouterHelp(String(stdout)));
    });
  });
}
