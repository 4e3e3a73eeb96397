/**
 * Starts, for the Workers-pool tests, the fake clouds (GCP, Kubernetes, …) on the ports the config chose; the
 * GatewayObject reaches them through the endpoint overrides in the backends' credentials.
 */
import { startFakeGcp } from "../fakes/gcp/server.ts";
import { startFakeKube } from "../fakes/kubernetes/server.ts";

export interface CloudPorts {
  gcp: number;
  kubernetes: number;
}

export default async function setup() {
  const ports = (globalThis as { gpClouds?: CloudPorts }).gpClouds;
  if (!ports) throw new Error("test/worker/vitest.config.ts did not choose the fake clouds' ports");
  const gcp = await startFakeGcp({ port: ports.gcp });
  const kube = await startFakeKube({ port: ports.kubernetes, namespaces: ["gateways"] });
  return async () => {
    await gcp.stop();
    await kube.stop();
  };
}
