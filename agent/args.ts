/**
 * @module
 * The agent's command line, as the host launcher (the local daemon, a VM's unit file) passes it.
 * The local daemon knows only `--http-port`/`--https-port`, so everything else is optional.
 */

import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { DEFAULT_PORT_RANGE, type PortRange, parsePortRange } from "./sglang/ports.ts";

export interface AgentArgs {
  userDataFile: string;
  stateDir: string;
  host: string;
  httpPort: number;
  httpsPort: number | null;
  /** null: no admin endpoint. */
  adminPort: number | null;
  /** Proxy processes (0: the proxy serves from the agent's own process). */
  processes: number;
  /** With `--processes 1`, serve from a child process of the proxy (crash isolation) instead of in the proxy's own. */
  servingChild: boolean;
  heartbeatIntervalMs: number;
  /** The SGLang router's launch command (program and leading arguments), instead of looking for one. */
  sglangRouterCommand: string[] | null;
  /** Loopback ports the agent gives the routers it launches. */
  sglangRouterPorts: PortRange;
  /**
   * Run the proxy inside the agent's process (it dies with the agent) instead of as the standalone
   * proxy the agent starts and reattaches to (`proxy-link.ts`). `--processes 0` implies it.
   */
  inProcessProxy: boolean;
}

export const USAGE =
  "usage: gateplane-agent --user-data <file> --state-dir <dir> --http-port <port> [--https-port <port>]" +
  " [--host <address>] [--admin-port <port>] [--processes <n>] [--heartbeat-interval <seconds>]" +
  " [--sglang-router-command <command>] [--sglang-router-ports <from>-<to>] [--in-process-proxy] [--serving-child]";

/** Bad command line: exit 2, like any CLI. */
export class UsageError extends Error {
  constructor(message: string) {
    super(`${message}\n${USAGE}`);
    this.name = "UsageError";
  }
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new UsageError(`--${name}: expected a port number, got "${value}"`);
  return n;
}

export function parseAgentArgs(argv: string[]): AgentArgs {
  let values: Record<string, string | undefined>;
  let inProcessProxy = false;
  let servingChild = false;
  try {
    const parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        "user-data": { type: "string" },
        "state-dir": { type: "string" },
        host: { type: "string" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        "admin-port": { type: "string" },
        processes: { type: "string" },
        // The old name of --processes, still accepted: launchers and unit files written before it pass it.
        workers: { type: "string" },
        "heartbeat-interval": { type: "string" },
        "sglang-router-command": { type: "string" },
        "sglang-router-ports": { type: "string" },
        "in-process-proxy": { type: "boolean" },
        "serving-child": { type: "boolean" },
      },
    });
    const { "in-process-proxy": inProcess, "serving-child": child, ...strings } = parsed.values;
    inProcessProxy = inProcess === true;
    servingChild = child === true;
    values = strings;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const required = (name: string): string => {
    const value = values[name];
    if (!value) throw new UsageError(`--${name} is required`);
    return value;
  };
  const interval = values["heartbeat-interval"];
  const intervalSeconds = interval === undefined ? 10 : Number(interval);
  if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) {
    throw new UsageError(`--heartbeat-interval: expected a positive number of seconds, got "${interval}"`);
  }
  const host = values.host ?? "127.0.0.1";
  if (isIP(host) === 0) throw new UsageError(`--host: expected an IP address, got "${host}"`);
  if (values.processes !== undefined && values.workers !== undefined) {
    throw new UsageError("--processes and --workers (its old name) are the same setting: give one");
  }
  const processesFlag = values.workers !== undefined ? "workers" : "processes";
  const processes = values[processesFlag];
  if (processes !== undefined && (!/^\d+$/.test(processes) || Number(processes) > 1024)) {
    throw new UsageError(
      `--${processesFlag}: expected a number of processes (0 serves from the agent), got "${processes}"`,
    );
  }
  const routerCommand = values["sglang-router-command"];
  if (routerCommand !== undefined && routerCommand.trim() === "") {
    throw new UsageError(`--sglang-router-command: expected a command, e.g. "/opt/smg/bin/smg launch"`);
  }
  const routerPorts = values["sglang-router-ports"];
  const sglangRouterPorts = routerPorts === undefined ? DEFAULT_PORT_RANGE : parsePortRange(routerPorts);
  if (!sglangRouterPorts) {
    throw new UsageError(`--sglang-router-ports: expected <from>-<to> with at least 2 ports, got "${routerPorts}"`);
  }
  const httpsPort = values["https-port"];
  const adminPort = values["admin-port"] === undefined ? 0 : port("admin-port", values["admin-port"]);
  return {
    userDataFile: required("user-data"),
    stateDir: required("state-dir"),
    host,
    httpPort: port("http-port", required("http-port")),
    httpsPort: httpsPort === undefined ? null : port("https-port", httpsPort),
    // 0 is the documented "disabled": a health endpoint on a random port nobody knows is no use.
    adminPort: adminPort === 0 ? null : adminPort,
    processes: processes === undefined ? availableParallelism() : Number(processes),
    servingChild,
    heartbeatIntervalMs: Math.round(intervalSeconds * 1000),
    // Split on spaces: the program and its leading arguments; the agent appends the launch flags.
    sglangRouterCommand: routerCommand === undefined ? null : routerCommand.trim().split(/\s+/),
    sglangRouterPorts,
    inProcessProxy: inProcessProxy || processes === "0",
  };
}
