/**
 * @module
 * The agent's command line, as the host launcher (the local daemon, a VM's unit file) passes it.
 */
import { parseArgs } from "node:util";

export interface AgentArgs {
  userDataFile: string;
  stateDir: string;
  httpPort: number;
  httpsPort: number | null;
  heartbeatIntervalMs: number;
}

export const USAGE =
  "usage: gateplane-agent --user-data <file> --state-dir <dir> --http-port <port> [--https-port <port>] [--heartbeat-interval <seconds>]";

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
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        "user-data": { type: "string" },
        "state-dir": { type: "string" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        "heartbeat-interval": { type: "string" },
      },
    }));
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
  const httpsPort = values["https-port"];
  return {
    userDataFile: required("user-data"),
    stateDir: required("state-dir"),
    httpPort: port("http-port", required("http-port")),
    httpsPort: httpsPort === undefined ? null : port("https-port", httpsPort),
    heartbeatIntervalMs: Math.round(intervalSeconds * 1000),
  };
}
