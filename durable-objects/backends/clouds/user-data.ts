/**
 * @module
 * The user-data of a cloud VM: the agent's cloud-init (`cloud-init.ts`) for this replica's
 * bootstrap, installing the agent package from the given URL.
 */

import { BackendError, type InstanceSpec } from "../types.ts";
import { CloudInitError, renderCloudInit } from "./cloud-init.ts";

export function cloudUserData(spec: Pick<InstanceSpec, "bootstrap" | "router">, packageUrl: string): string {
  try {
    return renderCloudInit({ bootstrap: spec.bootstrap, router: spec.router, agentPackageUrl: packageUrl });
  } catch (e) {
    if (e instanceof CloudInitError) throw new BackendError("BadUserData", e.message, { retryable: false, cause: e });
    throw e;
  }
}
