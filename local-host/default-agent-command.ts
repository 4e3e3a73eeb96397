/**
 * @module
 * How the daemon launches a host's agent by default: this checkout's `agent/main.ts` under tsx, with
 * the same Node that runs the daemon. Paths are absolute so the agent's working directory is free.
 */
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { LocalInstance } from "../schema/local-host.ts";
import type { LaunchSpec } from "./agent-supervisor.ts";

export interface InstancePaths {
  instanceDir: string;
  userDataFile: string;
  logFile: string;
}

export type AgentCommand = (instance: LocalInstance, paths: InstancePaths) => LaunchSpec;

const AGENT_MAIN = fileURLToPath(new URL("../agent/main.ts", import.meta.url));

export const defaultAgentCommand: AgentCommand = (instance, paths) => {
  // `--import tsx` would be resolved from the agent's cwd; an absolute URL works from anywhere.
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return {
    command: process.execPath,
    args: [
      "--import",
      tsxLoader,
      AGENT_MAIN,
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
