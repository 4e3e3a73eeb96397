/**
 * @module
 * How the daemon launches a host's agent by default: this checkout's `bin/gateplane-agent.mjs`, as a
 * cloud host runs it, with the same Node that runs the daemon. Paths are absolute so the agent's
 * working directory is free.
 */
import { fileURLToPath } from "node:url";
import type { LocalInstance } from "../schema/local-host.ts";
import type { LaunchSpec } from "./agent-supervisor.ts";

export interface InstancePaths {
  instanceDir: string;
  userDataFile: string;
  logFile: string;
}

export type AgentCommand = (instance: LocalInstance, paths: InstancePaths) => LaunchSpec;

const AGENT_BIN = fileURLToPath(new URL("../bin/gateplane-agent.mjs", import.meta.url));

/**
 * The proxy's lean V8 heap flags (`LEAN_HEAP_FLAGS` in proxy/process-fork.ts, which this part may
 * not import; test/node/agent-heap-flags.test.ts keeps them equal) for the agent too: it holds one
 * copy of the configuration (~20 MiB live at 10,000 services), and V8's default 16 MiB semi-spaces
 * and heap growth kept it at ~130–160 MiB RSS (docs/gateway-host.md#figures).
 */
export const AGENT_HEAP_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--heap-growing-percent=50"];

export const defaultAgentCommand: AgentCommand = (instance, paths) => {
  return {
    command: process.execPath,
    args: [
      ...AGENT_HEAP_FLAGS,
      AGENT_BIN,
      "--user-data",
      paths.userDataFile,
      "--state-dir",
      paths.instanceDir,
      "--http-port",
      String(instance.http_port),
      "--https-port",
      String(instance.https_port),
      // Many local hosts share one machine: one proxy process each (cloud hosts use every core).
      "--processes",
      "1",
    ],
    env: { ...process.env },
    cwd: paths.instanceDir,
  };
};
