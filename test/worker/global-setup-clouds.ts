/**
 * Starts, for the Workers-pool tests, the fake clouds (GCP, …) on the ports the config chose; the
 * GatewayObject reaches them through the endpoint overrides in the backends' credentials.
 */
import { startFakeGcp } from "../fakes/gcp/server.ts";

export interface CloudPorts {
  gcp: number;
}

export default async function setup() {
  const ports = (globalThis as { gpClouds?: CloudPorts }).gpClouds;
  if (!ports) throw new Error("test/worker/vitest.config.ts did not choose the fake clouds' ports");
  const gcp = await startFakeGcp({ port: ports.gcp });
  return async () => {
    await gcp.stop();
  };
}
