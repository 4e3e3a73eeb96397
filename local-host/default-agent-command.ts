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

export const defaultAgentCommand: AgentCommand = (instance, paths) => {
  return {
    command: process.execPath,
    args: [
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
