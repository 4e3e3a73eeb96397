/**
 * @module
 * The user-data of a cloud VM: the agent's cloud-init (`agent/cloud-init.ts`) for this replica's
 * bootstrap, installing the agent package from the given URL.
 */

import { CloudInitError, renderCloudInit } from "../../../agent/cloud-init.ts";
import type { AgentBootstrap } from "../../../schema/agent.ts";
import { BackendError } from "../types.ts";

export function cloudUserData(bootstrap: AgentBootstrap, packageUrl: string): string {
  try {
    return renderCloudInit({ bootstrap, agentPackageUrl: packageUrl });
  } catch (e) {
    if (e instanceof CloudInitError) throw new BackendError("BadUserData", e.message, { retryable: false, cause: e });
    throw e;
  }
}
