/**
 * The fake Azure speaks ARM's wire format: Microsoft's own management clients
 * (@azure/arm-network, @azure/arm-compute) create the backend's resources on it, follow its
 * long-running operations with their own pollers (Azure-AsyncOperation on create, Location on
 * delete), read its answers into their models and its errors into RestError. The SDK refuses
 * bearer tokens over http, so here the fake serves https with a certificate made for the test.
 * Also drives the azure backend module's token code against the fake for both credential kinds.
 */
import { ComputeManagementClient } from "@azure/arm-compute";
import { NetworkManagementClient } from "@azure/arm-network";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { armToken } from "../../durable-objects/backends/azure/token.ts";
import { type FakeAzure, startFakeAzure } from "../fakes/azure/server.ts";
import { selfSignedLoopbackCertificate } from "../fakes/tls/self-signed.ts";

let fake: FakeAzure;
let tls: { key: string; cert: string };
let dispatcher: Agent;
beforeAll(async () => {
  tls = selfSignedLoopbackCertificate();
  fake = await startFakeAzure({ tls });
  dispatcher = new Agent({ connect: { ca: tls.cert } });
});
afterAll(async () => {
  await dispatcher.close();
  await fake.stop();
});

/** The token the Worker would get, fetched here with the test CA trusted. */
async function fakeToken(): Promise<string> {
  const res = await fetch(`${fake.url}/${fake.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: fake.clientId,
      client_secret: fake.clientSecret,
      scope: "https://management.azure.com/.default",
    }),
    // @ts-expect-error undici's fetch option, not in the DOM RequestInit type
    dispatcher,
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

describe("fake Azure against Microsoft's ARM clients", () => {
  it("creates the backend's network and VM, follows both kinds of long-running operation, and deletes", async () => {
    const token = await fakeToken();
    const credential = { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_000_000 }) };
    const options = { endpoint: fake.url, tlsOptions: { ca: tls.cert } };
    const network = new NetworkManagementClient(credential, fake.subscriptionId, options);
    const compute = new ComputeManagementClient(credential, fake.subscriptionId, options);
    const rg = "rg-contract";
    const put = await fetch(
      `${fake.url}/subscriptions/${fake.subscriptionId}/resourceGroups/${rg}?api-version=2021-04-01`,
      {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ location: "westeurope" }),
        // @ts-expect-error undici's fetch option
        dispatcher,
      },
    );
    expect(put.status).toBe(201);

    const nsg = await network.networkSecurityGroups.beginCreateOrUpdateAndWait(rg, "nsg", {
      location: "westeurope",
      securityRules: [
        {
          name: "http",
          protocol: "Tcp",
          direction: "Inbound",
          access: "Allow",
          priority: 100,
          sourceAddressPrefix: "*",
          sourcePortRange: "*",
          destinationAddressPrefix: "*",
          destinationPortRange: "80",
        },
      ],
    });
    expect(nsg.securityRules?.[0]?.destinationPortRange).toBe("80");
    const vnet = await network.virtualNetworks.beginCreateOrUpdateAndWait(rg, "vnet", {
      location: "westeurope",
      addressSpace: { addressPrefixes: ["10.90.0.0/16"] },
      subnets: [{ name: "gateways", addressPrefix: "10.90.0.0/24", networkSecurityGroup: { id: nsg.id } }],
    });
    const ip = await network.publicIPAddresses.beginCreateOrUpdateAndWait(rg, "vm-ip", {
      location: "westeurope",
      sku: { name: "Standard" },
      publicIPAllocationMethod: "Static",
    });
    expect(ip.ipAddress).toMatch(/^20\./);
    const nic = await network.networkInterfaces.beginCreateOrUpdateAndWait(rg, "vm-nic", {
      location: "westeurope",
      ipConfigurations: [
        {
          name: "primary",
          subnet: { id: vnet.subnets![0]!.id },
          publicIPAddress: { id: ip.id, deleteOption: "Delete" },
        },
      ],
    });

    const vm = await compute.virtualMachines.beginCreateOrUpdateAndWait(
      rg,
      "vm",
      {
        location: "westeurope",
        hardwareProfile: { vmSize: "Standard_B1ms" },
        storageProfile: {
          imageReference: { publisher: "Canonical", offer: "ubuntu-24_04-lts", sku: "server", version: "latest" },
          osDisk: { createOption: "FromImage", deleteOption: "Delete" },
        },
        osProfile: {
          computerName: "vm",
          adminUsername: "gateplane",
          customData: Buffer.from("#cloud-config\n").toString("base64"),
          linuxConfiguration: {
            disablePasswordAuthentication: true,
            ssh: { publicKeys: [{ path: "/home/gateplane/.ssh/authorized_keys", keyData: "ssh-rsa AAAA test" }] },
          },
        },
        networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: "Delete" }] },
      },
      { updateIntervalInMs: 10 },
    );
    expect(vm.provisioningState).toBe("Succeeded");
    const viewed = await compute.virtualMachines.get(rg, "vm", { expand: "instanceView" });
    expect(viewed.instanceView?.statuses?.map((s) => s.code)).toContain("PowerState/running");

    const inUse = await network.networkInterfaces.beginDeleteAndWait(rg, "vm-nic").catch((e) => e);
    expect(inUse).toMatchObject({ statusCode: 400, code: "NicInUse" });

    await compute.virtualMachines.beginDeleteAndWait(rg, "vm", { updateIntervalInMs: 10 });
    const gone = await network.networkInterfaces.get(rg, "vm-nic").catch((e) => e);
    expect(gone).toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
    expect(fake.resources("Microsoft.Network/publicIPAddresses")).toHaveLength(0);
  });
});

describe("azure backend token", () => {
  const http = startFakeAzure();
  afterAll(async () => (await http).stop());

  it("gets an ARM token with a client secret and with a certificate assertion, and reports AADSTS errors", async () => {
    const f = await http;
    const identity = {
      tenantId: f.tenantId,
      clientId: f.clientId,
      authorityHost: f.url,
      resource: "https://management.azure.com",
    };
    expect(await armToken({ ...identity, clientSecret: f.clientSecret }, 5_000)).toMatch(/^eyFake\./);
    expect(await armToken({ ...identity, certificate: f.certificate }, 5_000)).toMatch(/^eyFake\./);
    const other = await startFakeAzure();
    try {
      // Same key material layout, wrong certificate: Entra ID does not know its thumbprint.
      await expect(armToken({ ...identity, certificate: other.certificate }, 5_000)).rejects.toThrow(
        /Azure Error: invalid_client: AADSTS700027: The certificate with identifier used to sign the client assertion is not registered/,
      );
    } finally {
      await other.stop();
    }
    await expect(
      armToken({ ...identity, certificate: { ...f.certificate, private_key_pem: "nope" } }, 5_000),
    ).rejects.toThrow(/client_certificate.private_key_pem: expected an unencrypted PKCS#8 PEM RSA key/);
  });
});
