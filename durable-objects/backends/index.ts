/**
 * @module
 * Picks the backend module for a gateway. Credentials are read from D1 and decrypted here, inside
 * the GatewayObject, and nowhere else; they are parsed again with their schema (as the API parsed
 * them before sealing), so each backend gets its typed, defaulted shape and a row that no longer
 * fits its schema fails here, not in the middle of a cloud call.
 */
import * as v from "valibot";
import { loadSealed } from "../../core/db/sealed-settings.ts";
import type { Env } from "../../core/env.ts";
import { BACKEND_CREDENTIALS, type BackendCredentials } from "../../schema/backend-credentials.ts";
import type { BackendType } from "../../schema/gateway.ts";
import { awsBackend } from "./aws/backend.ts";
import { azureBackend } from "./azure/backend.ts";
import { agentPackageUrl, backendTiming, cloudTimeoutMs } from "./clouds/worker-settings.ts";
import { gcpBackend } from "./gcp/backend.ts";
import { kubernetesBackend } from "./kubernetes/backend.ts";
import { localBackend } from "./local.ts";
import { BackendError, type GatewayBackend } from "./types.ts";

/** The whole `env`: a Kubernetes backend looks up the mTLS certificate binding its credentials name. */
export async function backendFor(env: Env, projectId: string, type: BackendType): Promise<GatewayBackend> {
  if (type === "local") {
    if (!env.LOCAL_HOST_DAEMON_URL) {
      throw new BackendError("NotConfigured", "the local backend needs LOCAL_HOST_DAEMON_URL (started by npm start)", {
        retryable: false,
      });
    }
    return localBackend({ daemonUrl: env.LOCAL_HOST_DAEMON_URL, token: env.LOCAL_HOST_DAEMON_TOKEN ?? "" });
  }
  const sealed = await loadSealed(env, projectId, type);
  if (!sealed) {
    throw new BackendError("NotConfigured", `the ${type} backend is not configured in this project`, {
      retryable: false,
    });
  }
  // Read once per backend: the pauses of polls and retries (unset in production: the defaults).
  const timing = backendTiming(env);
  const credentials = <B extends BackendType>(backend: B): BackendCredentials<B> =>
    v.parse(BACKEND_CREDENTIALS[backend], sealed) as BackendCredentials<B>;
  if (type === "aws") {
    return awsBackend({
      credentials: credentials("aws"),
      agentPackageUrl: env.AGENT_PACKAGE_URL,
      retryBaseMs: timing.retryDelayMs,
    });
  }
  if (type === "gcp") {
    return gcpBackend({
      credentials: credentials("gcp"),
      agentPackageUrl: agentPackageUrl(env.AGENT_PACKAGE_URL),
      timeoutMs: cloudTimeoutMs(env),
      ...timing,
    });
  }
  if (type === "kubernetes") {
    return kubernetesBackend({
      credentials: credentials("kubernetes"),
      agentPackageUrl: agentPackageUrl(env.AGENT_PACKAGE_URL),
      // mTLS certificate bindings are named by the credentials, so the backend looks them up by name.
      bindings: env as unknown as Record<string, unknown>,
      timeoutMs: cloudTimeoutMs(env),
      ...timing,
    });
  }
  if (type === "azure") {
    return azureBackend({
      credentials: credentials("azure"),
      agentPackageUrl: agentPackageUrl(env.AGENT_PACKAGE_URL),
      timeoutMs: cloudTimeoutMs(env),
      ...timing,
    });
  }
  throw new BackendError("NotImplemented", `provisioning on the ${type} backend is not available in this build yet`, {
    retryable: false,
  });
}
