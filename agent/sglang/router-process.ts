/**
 * @module
 * One SGLang router process: the launch flags, its exit, and stopping it. Its output is kept as a
 * short tail rather than copied to the agent's log (the router logs every request at info); the
 * tail is logged when the process ends unexpectedly, which is when it explains something.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { RouterPolicy } from "../../schema/gateway.ts";
import { LEAST_LOAD_DEFAULTS, type RouterConfig } from "../../schema/router.ts";

export interface RouterLaunch {
  port: number;
  prometheusPort: number;
  policy: RouterPolicy;
  /** The policy's tunables, as flags the installed router's help lists ({@link tunableFlags}). */
  tunables?: readonly string[];
}

export interface RouterExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not start at all (e.g. the program is missing). */
  error: string | null;
}

const TAIL_LINES = 20;

/**
 * The flags every generation understands. Both listeners stay on loopback: the proxy is the only
 * client of the router, and the Rust builds would bind the metrics port on 0.0.0.0 by default.
 */
export function routerFlags(launch: RouterLaunch): string[] {
  return [
    "--host",
    "127.0.0.1",
    "--port",
    String(launch.port),
    "--policy",
    launch.policy,
    "--prometheus-host",
    "127.0.0.1",
    "--prometheus-port",
    String(launch.prometheusPort),
    ...(launch.tunables ?? []),
  ];
}

/** The `router:` fields passed as the router's own flags, named as SMG names them. */
const FLAG_TUNABLES = Object.keys(LEAST_LOAD_DEFAULTS) as (keyof typeof LEAST_LOAD_DEFAULTS)[];

/**
 * The tunables of `router` the installed router takes: `least_load_kv_pressure_weight: 0.3` becomes
 * `--least-load-kv-pressure-weight 0.3` when its help (`offered`) lists that flag; a flag it does
 * not list is left out (the router's default applies), as is any tunable of another policy.
 */
export function tunableFlags(router: RouterConfig, offered: ReadonlySet<string>): string[] {
  return FLAG_TUNABLES.flatMap((field) => {
    const value = router[field];
    const flag = `--${field.replaceAll("_", "-")}`;
    return value === undefined || !offered.has(flag) ? [] : [flag, String(value)];
  });
}

export const describeExit = (exit: RouterExit) =>
  exit.error ?? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`);

export class RouterProcess {
  readonly exited: Promise<RouterExit>;
  readonly #child: ChildProcess;
  readonly #tail: string[] = [];
  #exit: RouterExit | null = null;

  constructor(command: readonly string[], launch: RouterLaunch) {
    const [program, ...args] = command;
    this.#child = spawn(program!, [...args, ...routerFlags(launch)], { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      let partial = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) this.#remember(line);
      });
    }
    this.exited = new Promise((resolve) => {
      const done = (exit: RouterExit) => {
        this.#exit ??= exit;
        resolve(this.#exit);
      };
      this.#child.once("error", (error) => done({ code: null, signal: null, error: error.message }));
      // Its last words may still be in the pipes at `exit`: wait for them to close, but not for a
      // grandchild that inherited them.
      this.#child.once("exit", (code, signal) => {
        const exit = { code, signal, error: null };
        const timer = setTimeout(() => done(exit), 500);
        this.#child.once("close", () => {
          clearTimeout(timer);
          done(exit);
        });
      });
    });
  }

  get pid(): number | null {
    return this.#child.pid ?? null;
  }

  get running(): boolean {
    return this.#exit === null;
  }

  /** The last lines the router wrote (stdout and stderr interleaved). */
  tail(): string[] {
    return [...this.#tail];
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  #remember(line: string) {
    this.#tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }
}
