/**
 * @module
 * The agent's software version as reported to the control plane: the package's version.
 */
import { readFileSync } from "node:fs";

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    // A broken install should still let the host run; the version is informational.
    return "unknown";
  }
}

export const AGENT_VERSION = readVersion();
