/**
 * The azure backend through the GatewayObject, against the fake Entra ID + ARM started by
 * global-setup-clouds.ts: secret and certificate credentials, the NSG that opens 80/443, the VM
 * with the agent's cloud-init as customData, teardown of VM, NIC, disk and IP, faults, bad secrets.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  api,
  applyConfig,
  gatewayStub,
  getGateway,
  newProject,
  objectSql,
  plan,
  registerAgent,
  waitFor,
} from "./helpers.ts";

const FAKE = env.AZURE_FAKE_URL;

interface Resource {
  id: string;
  type: string;
  name: string;
  body: any;
}
interface Client {
  tenant_id: string;
  client_id: string;
  subscription_id: string;
  client_secret: string;
  client_certificate: { private_key_pem: string; certificate_pem: string };
}

const client = async () => (await (await fetch(`${FAKE}/__client`)).json()) as Client;
const resources = async () => ((await (await fetch(`${FAKE}/__state`)).json()) as { resources: Resource[] }).resources;
const control = (faults: Record<string, number | string>) =>
  fetch(`${FAKE}/__control`, { method: "POST", body: JSON.stringify(faults) });
/** Per-replica resources (VM, NIC, public IP) of one gateway, by its tags. */
const replicaResources = async (project: string, gateway: string) =>
  (await resources()).filter(
    (r) => r.body.tags?.gateplane_project === project && r.body.tags?.gateplane_gateway === gateway,
  );

async function azureProject(auth: "secret" | "certificate" | "bad-secret"): Promise<string> {
  const project = await newProject();
  const c = await client();
  const put = await api("PUT", `/api/v1/projects/${project}/backends/azure`, {
    tenant_id: c.tenant_id,
    client_id: c.client_id,
    subscription_id: c.subscription_id,
    ...(auth === "certificate"
      ? { client_certificate: c.client_certificate }
      : { client_secret: auth === "secret" ? c.client_secret : "wrong" }),
    resource_group: `rg-${project}`,
    authority_host: FAKE,
    resource_manager_endpoint: FAKE,
  });
  expect(put.status).toBe(200);
  return project;
}

const azureConfig = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "gateway",
  name,
  backend: "azure",
  region: "westeurope",
  domain: "gw.example.com",
  ...extra,
});

const waitGateway = (project: string, name: string, what: string, pred: (g: any) => boolean) =>
  waitFor(
    what,
    async () => {
      const g = (await getGateway(project, name)).body;
      return pred(g) ? g : null;
    },
    25_000,
  );

async function deleteAndCheck(project: string, name: string) {
  expect((await api("DELETE", `/api/v1/projects/${project}/gateways/${name}`)).status).toBe(202);
  await waitFor("gone", async () => (await getGateway(project, name)).status === 404, 25_000);
  expect(await replicaResources(project, name)).toHaveLength(0);
}

describe("azure backend", { timeout: 40_000 }, () => {
  it("provisions with a client certificate: NSG open on 80/443, VM with cloud-init, then removes it all", async () => {
    const project = await azureProject("certificate");
    expect((await applyConfig(project, azureConfig("gw-az"))).status).toBe(201);
    const g = await waitGateway(project, "gw-az", "hostname", (x) => x.replicas[0]?.hostname);
    expect(g.replicas[0]!.hostname).toMatch(/^20\.\d+\.\d+\.\d+$/);
    expect(g.replicas[0]!.instance_id).toMatch(new RegExp(`^rg-${project}/gp-[a-z0-9-]+-[0-9a-f]{8}$`));

    const all = await resources();
    const nsg = all.find(
      (r) => r.type === "Microsoft.Network/networkSecurityGroups" && r.id.includes(`rg-${project}`),
    )!;
    const inbound = nsg.body.properties.securityRules
      .filter((r: any) => r.properties.direction === "Inbound" && r.properties.access === "Allow")
      .map((r: any) => r.properties.destinationPortRange);
    expect(inbound.sort()).toEqual(["443", "80"]);
    const vnet = all.find((r) => r.type === "Microsoft.Network/virtualNetworks" && r.id.includes(`rg-${project}`))!;
    expect(vnet.body.properties.subnets[0].properties.networkSecurityGroup.id).toBe(nsg.id);

    const vm = (await replicaResources(project, "gw-az")).find((r) => r.type === "Microsoft.Compute/virtualMachines")!;
    expect(vm.body.properties.hardwareProfile.vmSize).toBe("Standard_B1ms");
    const userData = atob(vm.body.properties.osProfile.customData);
    expect(userData.startsWith("#cloud-config\n")).toBe(true);
    expect(userData).toContain(g.id);

    expect((await registerAgent(project, "gw-az")).res.status).toBe(200);
    await waitGateway(project, "gw-az", "running", (x) => x.status === "running");
    await deleteAndCheck(project, "gw-az");
  });

  it("provisions with a client secret, rides out throttling, 500s and a timeout; a replayed create makes no second VM", async () => {
    const project = await azureProject("secret");
    // One call held past the 3 s deadline (the cloud carries it out late), then a 429 and a 5xx: the
    // four in-call tries see timeout, 429, 5xx, success. (With a second 429 the fourth try would
    // pass only if the late call happened to land first and take that 429.)
    await control({ throttle: 1, fail: 1, delay_calls: 1, delay_ms: 4_000 });
    await applyConfig(project, azureConfig("gw-az-faults"));
    await waitGateway(project, "gw-az-faults", "hostname", (x) => x.replicas[0]?.hostname);
    await objectSql(
      project,
      "gw-az-faults",
      "UPDATE replicas SET status = 'submitted', instance_id = NULL, next_attempt_at = 0",
    );
    await expect(
      runInDurableObject(await gatewayStub(project, "gw-az-faults"), (_o, s) => s.abort("simulated restart")),
    ).rejects.toThrow("simulated restart");
    const stub = await gatewayStub(project, "gw-az-faults");
    await Promise.all([runDurableObjectAlarm(stub), runDurableObjectAlarm(stub)]);
    await waitGateway(project, "gw-az-faults", "instance again", (x) => x.replicas[0]?.instance_id);
    const types = (await replicaResources(project, "gw-az-faults")).map((r) => r.type).sort();
    expect(types).toEqual([
      "Microsoft.Compute/virtualMachines",
      "Microsoft.Network/networkInterfaces",
      "Microsoft.Network/publicIPAddresses",
    ]);
    await deleteAndCheck(project, "gw-az-faults");
  });

  it("fails with Entra ID's message when the client secret is wrong", async () => {
    const project = await azureProject("bad-secret");
    await applyConfig(project, azureConfig("gw-az-bad"));
    const g = await waitGateway(project, "gw-az-bad", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("Azure Error: invalid_client: AADSTS7000215: Invalid client secret provided.");
    expect(g.status_message).not.toContain("Trace ID");
  });

  it("fails with the VM operation's error and leaves no NIC or IP behind", async () => {
    const project = await azureProject("secret");
    await control({ fail_vm_with: "OverconstrainedAllocationRequest" });
    await applyConfig(project, azureConfig("gw-az-alloc"));
    const g = await waitGateway(project, "gw-az-alloc", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("Azure Error: OverconstrainedAllocationRequest: injected");
    await waitFor("cleaned up", async () => (await replicaResources(project, "gw-az-alloc")).length === 0, 25_000);
  });

  it("refuses private gateways on Azure when planning", async () => {
    const project = await azureProject("secret");
    const res = await plan(project, azureConfig("gw-az-private", { public_ip: false, certificate: null }));
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("public_ip");
  });
});
