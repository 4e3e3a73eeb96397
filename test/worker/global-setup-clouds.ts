/**
 * Starts, for the Workers-pool tests, the fake clouds (GCP, Kubernetes, Azure) and Cloudflare's DNS API on the ports the config chose; the
 * GatewayObject reaches them through the endpoint overrides in the backends' credentials.
 */
import { startFakeAzure } from "../fakes/azure/server.ts";
import { startFakeCloudflare } from "../fakes/cloudflare/server.ts";
import { startFakeGcp } from "../fakes/gcp/server.ts";
import { startFakeKube } from "../fakes/kubernetes/server.ts";
import { selfSignedLoopbackCertificate } from "../fakes/tls/self-signed.ts";

export interface CloudPorts {
  gcp: number;
  kubernetes: number;
  kubernetesTls: number;
  azure: number;
  cloudflare: number;
}

export default async function setup() {
  const ports = (globalThis as { gpClouds?: CloudPorts }).gpClouds;
  if (!ports) throw new Error("test/worker/vitest.config.ts did not choose the fake clouds' ports");
  const gcp = await startFakeGcp({ port: ports.gcp });
  const kube = await startFakeKube({ port: ports.kubernetes, namespaces: ["gateways"] });
  // A cluster whose API server has a private CA: the Workers runtime cannot be told to trust it.
  const kubeTls = await startFakeKube({ port: ports.kubernetesTls, tls: selfSignedLoopbackCertificate() });
  const azure = await startFakeAzure({ port: ports.azure });
  const cloudflare = await startFakeCloudflare({ port: ports.cloudflare, zoneName: "example.com" });
  return async () => {
    await cloudflare.stop();
    await azure.stop();
    await gcp.stop();
    await kube.stop();
    await kubeTls.stop();
  };
}
