/**
 * The kubernetes backend through the GatewayObject, against the fake API server started by
 * global-setup-clouds.ts: Secret + Deployment + LoadBalancer Service per replica, their removal,
 * DNS-name load balancers, clusters without LoadBalancer support, faults and bad tokens.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { api, applyConfig, gatewayStub, getGateway, newProject, objectSql, registerAgent, waitFor } from "./helpers.ts";

const FAKE = env.KUBERNETES_FAKE_URL;

interface KubeObject {
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

const fakeState = async () =>
  (await (await fetch(`${FAKE}/__state`)).json()) as { token: string; objects: KubeObject[] };
const control = (faults: Record<string, number | string>) =>
  fetch(`${FAKE}/__control`, { method: "POST", body: JSON.stringify(faults) });
const objectsOf = async (project: string, gateway: string) =>
  (await fakeState()).objects.filter(
    (o) => o.metadata.labels?.gateplane_project === project && o.metadata.labels?.gateplane_gateway === gateway,
  );

async function kubeProject(extra: Record<string, unknown> = {}): Promise<string> {
  const project = await newProject();
  const put = await api("PUT", `/api/v1/projects/${project}/backends/kubernetes`, {
    server: FAKE,
    token: (await fakeState()).token,
    namespace: "gateways",
    ...extra,
  });
  expect(put.status).toBe(200);
  return project;
}

const kubeConfig = (name: string) => ({
  type: "gateway",
  name,
  backend: "kubernetes",
  region: "cluster",
  domain: "gw.example.com",
});

const waitGateway = (project: string, name: string, what: string, pred: (g: any) => boolean) =>
  waitFor(
    what,
    async () => {
      const g = (await getGateway(project, name)).body;
      return pred(g) ? g : null;
    },
    20_000,
  );

async function deleteAndCheck(project: string, name: string) {
  expect((await api("DELETE", `/api/v1/projects/${project}/gateways/${name}`)).status).toBe(202);
  await waitFor("gone", async () => (await getGateway(project, name)).status === 404, 20_000);
  expect(await objectsOf(project, name)).toHaveLength(0);
}

describe("kubernetes backend", { timeout: 30_000 }, () => {
  afterEach(async () => {
    await control({ lb_mode: "ip", lb_reads: 1, throttle: 0, fail: 0, delay_calls: 0 });
  });

  it("runs the agent in a Deployment behind a LoadBalancer Service and removes all of it", async () => {
    const project = await kubeProject();
    expect((await applyConfig(project, kubeConfig("gw-k8s"))).status).toBe(201);
    const g = await waitGateway(project, "gw-k8s", "hostname", (x) => x.replicas[0]?.hostname);
    expect(g.replicas[0]!.hostname).toMatch(/^203\.0\.113\.\d+$/);
    expect(g.replicas[0]!.instance_id).toMatch(/^gateways\/gp-[a-z0-9-]+-[0-9a-f]{8}$/);

    const objects = await objectsOf(project, "gw-k8s");
    expect(objects.map((o) => o.kind).sort()).toEqual(["Deployment", "Secret", "Service"]);
    const service = objects.find((o) => o.kind === "Service")!;
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toEqual([80, 443]);
    const secret = objects.find((o) => o.kind === "Secret")!;
    const bootstrap = JSON.parse(atob(secret.data!["bootstrap.json"]!));
    expect(bootstrap).toMatchObject({ gateway_id: g.id, replica_num: 0 });
    const container = objects.find((o) => o.kind === "Deployment")!.spec.template.spec.containers[0];
    expect(container.image).toBe("node:22-bookworm-slim");
    expect(container.env).toContainEqual({
      name: "AGENT_PACKAGE_URL",
      value: "https://downloads.gateplane.test/gateplane-0.1.0.tgz",
    });

    expect((await registerAgent(project, "gw-k8s")).res.status).toBe(200);
    await waitGateway(project, "gw-k8s", "running", (x) => x.status === "running");
    await deleteAndCheck(project, "gw-k8s");
  });

  it("takes a DNS name from the load balancer as the hostname; runs a configured image and command", async () => {
    await control({ lb_mode: "hostname", lb_reads: 2 });
    const project = await kubeProject({
      agent_image: "registry.example.com/gateplane-agent:0.1.0",
      agent_command: ["gateplane-agent", "--user-data", "/etc/gateplane/bootstrap.json"],
    });
    await applyConfig(project, kubeConfig("gw-k8s-dns"));
    const g = await waitGateway(project, "gw-k8s-dns", "hostname", (x) => x.replicas[0]?.hostname);
    expect(g.replicas[0]!.hostname).toMatch(/\.elb\.amazonaws\.com$/);
    expect(g.dns_records).toEqual([{ name: "*.gw.example.com", type: "CNAME", value: g.replicas[0]!.hostname }]);
    const container = (await objectsOf(project, "gw-k8s-dns")).find((o) => o.kind === "Deployment")!.spec.template.spec
      .containers[0];
    expect(container).toMatchObject({
      image: "registry.example.com/gateplane-agent:0.1.0",
      command: ["gateplane-agent", "--user-data", "/etc/gateplane/bootstrap.json"],
    });
    await deleteAndCheck(project, "gw-k8s-dns");
  });

  it("fails clearly, leaving nothing behind, when the cluster gives Services no load balancer", async () => {
    await control({ lb_mode: "none" });
    const project = await kubeProject({ load_balancer_timeout_seconds: 1 });
    await applyConfig(project, kubeConfig("gw-k8s-nolb"));
    const g = await waitGateway(project, "gw-k8s-nolb", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("Ensure the Kubernetes cluster supports LoadBalancer services");
    await waitFor("cleaned up", async () => (await objectsOf(project, "gw-k8s-nolb")).length === 0, 20_000);
    await deleteAndCheck(project, "gw-k8s-nolb");
  });

  it("rides out throttling, 500s and a timeout, and a restart mid-create makes no second set of objects", async () => {
    const project = await kubeProject();
    // One call held past the 3 s deadline (the cloud carries it out late), then a 429 and a 5xx: the
    // four in-call tries see timeout, 429, 5xx, success. (With a second 429 the fourth try would
    // pass only if the late call happened to land first and take that 429.)
    await control({ throttle: 1, fail: 1, delay_calls: 1, delay_ms: 4_000 });
    await applyConfig(project, kubeConfig("gw-k8s-faults"));
    await waitGateway(project, "gw-k8s-faults", "hostname", (x) => x.replicas[0]?.hostname);

    // Replay the create from scratch, as after a restart that lost its answer, twice at once.
    await objectSql(
      project,
      "gw-k8s-faults",
      "UPDATE replicas SET status = 'submitted', instance_id = NULL, next_attempt_at = 0",
    );
    await expect(
      runInDurableObject(await gatewayStub(project, "gw-k8s-faults"), (_o, s) => s.abort("simulated restart")),
    ).rejects.toThrow("simulated restart");
    const stub = await gatewayStub(project, "gw-k8s-faults");
    await Promise.all([runDurableObjectAlarm(stub), runDurableObjectAlarm(stub)]);
    await waitGateway(project, "gw-k8s-faults", "instance again", (x) => x.replicas[0]?.instance_id);
    const objects = await objectsOf(project, "gw-k8s-faults");
    expect(objects.map((o) => o.kind).sort()).toEqual(["Deployment", "Secret", "Service"]);
    await deleteAndCheck(project, "gw-k8s-faults");
  });

  it("fails with the API server's Status when the token is wrong", async () => {
    const project = await kubeProject({ token: "not-the-token" });
    await applyConfig(project, kubeConfig("gw-k8s-badtoken"));
    const g = await waitGateway(project, "gw-k8s-badtoken", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("Kubernetes Error: Unauthorized: Unauthorized");
  });

  it("fails clearly, never skipping verification, when the API server's CA is private", async () => {
    const project = await kubeProject({
      server: env.KUBERNETES_TLS_FAKE_URL,
      ca_certificate_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    });
    await applyConfig(project, kubeConfig("gw-k8s-tls"));
    const g = await waitGateway(project, "gw-k8s-tls", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("Kubernetes Error: TLS:");
    expect(g.status_message).toContain("cannot use ca_certificate_pem");
  });

  it("refuses credentials without a way to authenticate, naming the fields", async () => {
    const project = await newProject();
    const res = await api("PUT", `/api/v1/projects/${project}/backends/kubernetes`, { server: FAKE });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("set token or mtls_certificate_binding");
  });
});
