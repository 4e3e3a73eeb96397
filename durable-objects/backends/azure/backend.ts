/**
 * @module
 * The `azure` backend: ARM by raw REST. Per location, shared by the project's gateways: a resource
 * group, a network security group allowing TCP 80 and 443 in (dstack's Azure gateways open only
 * 22, its issue #2164), and a virtual network whose subnet carries that NSG. Per replica: a public
 * IP, a NIC (the NSG again) and an Ubuntu 24.04 VM whose `customData` is the agent's cloud-init;
 * the VM deletes its disk, NIC and IP with itself, and teardown deletes them too in case the VM
 * never came to be. Instance ids are `<resource group>/<vm name>`. Private gateways are refused by
 * the configuration schema (public IPs only, like dstack).
 */
import type { BackendCredentials } from "../../../schema/backend-credentials.ts";
import { endpoint, sha256Hex } from "../clouds/rest.ts";
import { cloudUserData } from "../clouds/user-data.ts";
import { BackendError, type GatewayBackend, type InstanceInfo, type InstanceSpec, type NetworkInfo } from "../types.ts";
import { armApi } from "./arm-api.ts";
import { throwawaySshPublicKey } from "./ssh-key.ts";

const DEFAULT_VM_SIZE = "Standard_B1ms";
const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";
const DEFAULT_RESOURCE_MANAGER = "https://management.azure.com";
export const IMAGE = { publisher: "Canonical", offer: "ubuntu-24_04-lts", sku: "server", version: "latest" };
const V = { resources: "2021-04-01", network: "2023-09-01", compute: "2024-03-01" } as const;
const ADDRESS_SPACE = "10.90.0.0/16";
const SUBNET = "10.90.0.0/24";

export interface AzureBackendOptions {
  credentials: BackendCredentials<"azure">;
  agentPackageUrl: string;
  timeoutMs?: number;
  pollIntervalMs?: number;
  operationTimeoutMs?: number;
  retryDelayMs?: number;
}

interface Vm {
  name: string;
  properties?: {
    provisioningState?: string;
    instanceView?: { statuses?: { code?: string }[] };
  };
}

/** Azure tag names may not contain `<>%&\?/`; values are at most 256 characters. */
function armTags(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) out[k.replace(/[<>%&\\?/]/g, "_").slice(0, 512)] = v.slice(0, 256);
  return out;
}

const resourceName = (text: string, max: number) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-")
    .slice(0, max)
    .replace(/-+$/, "");

export function azureBackend(options: AzureBackendOptions): GatewayBackend {
  const c = options.credentials;
  const arm = armApi({
    identity: {
      tenantId: c.tenant_id,
      clientId: c.client_id,
      clientSecret: c.client_secret,
      certificate: c.client_certificate,
      authorityHost: endpoint("authority_host", c.authority_host ?? DEFAULT_AUTHORITY_HOST),
      resource: endpoint("resource_manager_endpoint", c.resource_manager_endpoint ?? DEFAULT_RESOURCE_MANAGER),
    },
    endpoint: endpoint("resource_manager_endpoint", c.resource_manager_endpoint ?? DEFAULT_RESOURCE_MANAGER),
    subscriptionId: c.subscription_id,
    timeoutMs: options.timeoutMs ?? 20_000,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    operationTimeoutMs: options.operationTimeoutMs ?? 120_000,
    retryDelayMs: options.retryDelayMs ?? 500,
  });
  const group = (location: string) => c.resource_group ?? `gateplane-${resourceName(location, 60)}`;
  const rg = (name: string) => `/resourceGroups/${encodeURIComponent(name)}`;
  const net = (location: string) => ({
    nsg: `gateplane-gateways-${location}-nsg`,
    vnet: `gateplane-gateways-${location}-vnet`,
    subnet: "gateways",
  });
  const vmName = async (spec: Pick<InstanceSpec, "name" | "clientToken">) =>
    `${resourceName(spec.name, 54)}-${(await sha256Hex(spec.clientToken)).slice(0, 8)}`;
  const network = (path: string) => `/providers/Microsoft.Network${path}`;
  const compute = (path: string) => `/providers/Microsoft.Compute${path}`;

  async function put(path: string, apiVersion: string, body: unknown): Promise<void> {
    const res = await arm.call("PUT", path, apiVersion, body);
    if (res.status === 404) throw new BackendError("NotFound", `Azure Error: NotFound: ${path}`, { retryable: false });
    if (!(await arm.settle(res))) {
      throw new BackendError("OperationPending", `Azure Error: OperationPending: ${path} is still being created`, {
        retryable: true,
      });
    }
  }

  async function get<T>(path: string, apiVersion: string): Promise<T | null> {
    const res = await arm.call("GET", path, apiVersion);
    return res.status === 404 ? null : (res.json as T);
  }

  /** Deletes and waits; true when gone. */
  async function del(path: string, apiVersion: string): Promise<boolean> {
    const res = await arm.call("DELETE", path, apiVersion);
    if (res.status === 404 || res.status === 204) return true;
    return arm.settle(res);
  }

  async function info(group: string, name: string, region: string): Promise<InstanceInfo | null> {
    const vm = await get<Vm>(`${rg(group)}${compute(`/virtualMachines/${name}`)}?$expand=instanceView`, V.compute);
    const ip = await get<{ properties?: { ipAddress?: string } }>(
      `${rg(group)}${network(`/publicIPAddresses/${name}-ip`)}`,
      V.network,
    );
    if (!vm) {
      // A create that stopped between the IP/NIC and the VM leaves parts that teardown must find.
      const nic = await get(`${rg(group)}${network(`/networkInterfaces/${name}-nic`)}`, V.network);
      if (!ip && !nic) return null;
      return { instanceId: `${group}/${name}`, state: "pending", hostname: null, region };
    }
    const power = vm.properties?.instanceView?.statuses?.find((s) => s.code?.startsWith("PowerState/"))?.code;
    const provisioning = vm.properties?.provisioningState;
    const state =
      provisioning === "Deleting" || power === "PowerState/deallocated" || power === "PowerState/stopped"
        ? "terminated"
        : provisioning === "Succeeded" && power === "PowerState/running"
          ? "running"
          : "pending";
    return {
      instanceId: `${group}/${name}`,
      state,
      hostname: ip?.properties?.ipAddress ?? null,
      region,
      backendData: { resource_group: group },
    };
  }

  function splitId(instanceId: string) {
    const [g, name] = instanceId.split("/");
    if (!g || !name) {
      throw new BackendError("BadInstanceId", `Azure instance id ${instanceId} is not <resource group>/<vm>`, {
        retryable: false,
      });
    }
    return { group: g, name };
  }

  return {
    type: "azure",

    async ensureNetwork(spec): Promise<NetworkInfo> {
      if (!spec.publicIp) {
        throw new BackendError("Unsupported", "private gateways are not supported on Azure", { retryable: false });
      }
      const location = spec.region;
      const g = group(location);
      const n = net(location);
      await put(rg(g), V.resources, { location, tags: { owner: "gateplane" } });
      const nsgId = `/subscriptions/${c.subscription_id}${rg(g)}${network(`/networkSecurityGroups/${n.nsg}`)}`;
      const rule = (name: string, port: string, priority: number) => ({
        name,
        properties: {
          protocol: "Tcp",
          direction: "Inbound",
          access: "Allow",
          priority,
          sourceAddressPrefix: "*",
          sourcePortRange: "*",
          destinationAddressPrefix: "*",
          destinationPortRange: port,
        },
      });
      await put(`${rg(g)}${network(`/networkSecurityGroups/${n.nsg}`)}`, V.network, {
        location,
        tags: { owner: "gateplane" },
        properties: { securityRules: [rule("gateplane-http", "80", 100), rule("gateplane-https", "443", 110)] },
      });
      await put(`${rg(g)}${network(`/virtualNetworks/${n.vnet}`)}`, V.network, {
        location,
        tags: { owner: "gateplane" },
        properties: {
          addressSpace: { addressPrefixes: [ADDRESS_SPACE] },
          subnets: [{ name: n.subnet, properties: { addressPrefix: SUBNET, networkSecurityGroup: { id: nsgId } } }],
        },
      });
      return {
        resourceGroup: g,
        nsgId,
        subnetId: `/subscriptions/${c.subscription_id}${rg(g)}${network(`/virtualNetworks/${n.vnet}/subnets/${n.subnet}`)}`,
      };
    },

    async createInstance(spec: InstanceSpec, netInfo: NetworkInfo): Promise<InstanceInfo> {
      const location = spec.region;
      const g = String(netInfo.resourceGroup);
      const name = await vmName(spec);
      const tags = armTags(spec.tags);
      const id = (path: string) => `/subscriptions/${c.subscription_id}${rg(g)}${path}`;
      await put(`${rg(g)}${network(`/publicIPAddresses/${name}-ip`)}`, V.network, {
        location,
        tags,
        sku: { name: "Standard" },
        properties: { publicIPAllocationMethod: "Static", publicIPAddressVersion: "IPv4" },
      });
      await put(`${rg(g)}${network(`/networkInterfaces/${name}-nic`)}`, V.network, {
        location,
        tags,
        properties: {
          networkSecurityGroup: { id: String(netInfo.nsgId) },
          ipConfigurations: [
            {
              name: "primary",
              properties: {
                subnet: { id: String(netInfo.subnetId) },
                privateIPAllocationMethod: "Dynamic",
                publicIPAddress: {
                  id: id(network(`/publicIPAddresses/${name}-ip`)),
                  properties: { deleteOption: "Delete" },
                },
              },
            },
          ],
        },
      });
      // The VM's name embeds the client token: a repeated pass finds the VM it made.
      // Only when absent: a second PUT would try to change the VM's SSH key, which ARM refuses.
      const vmPath = `${rg(g)}${compute(`/virtualMachines/${name}`)}`;
      if (!(await get<Vm>(vmPath, V.compute))) {
        const vmBody = {
          location,
          tags,
          properties: {
            hardwareProfile: { vmSize: spec.instanceType ?? DEFAULT_VM_SIZE },
            storageProfile: {
              imageReference: IMAGE,
              osDisk: {
                createOption: "FromImage",
                deleteOption: "Delete",
                diskSizeGB: 30,
                managedDisk: { storageAccountType: "StandardSSD_LRS" },
              },
            },
            osProfile: {
              computerName: name.slice(0, 64),
              adminUsername: "gateplane",
              customData: btoa(cloudUserData(spec, options.agentPackageUrl)),
              linuxConfiguration: {
                disablePasswordAuthentication: true,
                ssh: {
                  publicKeys: [
                    { path: "/home/gateplane/.ssh/authorized_keys", keyData: await throwawaySshPublicKey() },
                  ],
                },
              },
            },
            networkProfile: {
              networkInterfaces: [
                {
                  id: id(network(`/networkInterfaces/${name}-nic`)),
                  properties: { primary: true, deleteOption: "Delete" },
                },
              ],
            },
          },
        };
        try {
          await put(vmPath, V.compute, vmBody);
        } catch (e) {
          // A timed-out earlier PUT that ARM carried out late made the VM (with another SSH key): keep it.
          const late = e instanceof BackendError && e.code === "PropertyChangeNotAllowed";
          if (!late || !(await get<Vm>(vmPath, V.compute))) throw e;
        }
      }
      return (
        (await info(g, name, spec.region)) ?? {
          instanceId: `${g}/${name}`,
          state: "pending",
          hostname: null,
          region: spec.region,
        }
      );
    },

    async findInstance(spec) {
      return info(group(spec.region), await vmName(spec), spec.region);
    },

    async describeInstance(instanceId, region) {
      const { group: g, name } = splitId(instanceId);
      return info(g, name, region);
    },

    async terminateInstance(instanceId) {
      const { group: g, name } = splitId(instanceId);
      const gone = await del(`${rg(g)}${compute(`/virtualMachines/${name}`)}`, V.compute);
      if (!gone) {
        throw new BackendError("OperationPending", `Azure Error: OperationPending: VM ${name} is still being deleted`, {
          retryable: true,
        });
      }
      // Normally deleted with the VM (deleteOption); a VM that never came to be leaves them.
      await del(`${rg(g)}${network(`/networkInterfaces/${name}-nic`)}`, V.network);
      await del(`${rg(g)}${network(`/publicIPAddresses/${name}-ip`)}`, V.network);
    },
  };
}
