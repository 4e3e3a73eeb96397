/**
 * @module
 * The `gcp` backend: Compute Engine v1 by raw REST, authenticated with a service-account key.
 * Per gateway region it ensures a firewall rule opening TCP 80/443 to instances with the
 * `gateplane-gateway` network tag, then inserts one Ubuntu VM per replica whose `user-data`
 * metadata carries the agent's cloud-init. Instance ids are `<zone>/<name>`.
 */
import type { BackendCredentials } from "../../../schema/backend-credentials.ts";
import { deterministicUuid, endpoint } from "../clouds/rest.ts";
import { cloudUserData } from "../clouds/user-data.ts";
import { BackendError, type GatewayBackend, type InstanceInfo, type InstanceSpec, type NetworkInfo } from "../types.ts";
import { computeApi, type Operation } from "./compute-api.ts";
import { firewallName, GATEWAY_NETWORK_TAG, instanceName, labels } from "./names.ts";
import { DEFAULT_TOKEN_URI } from "./token.ts";

const DEFAULT_MACHINE_TYPE = "e2-medium";
/** Canonical's current LTS for x86 (e2 machines); cloud-init reads the `user-data` metadata key. */
const IMAGE_FAMILY = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64";
const DEFAULT_API_ENDPOINT = "https://compute.googleapis.com";
const DISK_GB = "10";

export interface GcpBackendOptions {
  credentials: BackendCredentials<"gcp">;
  agentPackageUrl: string;
  timeoutMs?: number;
  pollIntervalMs?: number;
  operationTimeoutMs?: number;
  retryDelayMs?: number;
}

interface GcpInstance {
  name: string;
  zone: string;
  status: string;
  networkInterfaces?: { networkIP?: string; accessConfigs?: { natIP?: string }[] }[];
}

const ZONE = /^[a-z]+-[a-z]+\d+-[a-z]$/;
const last = (url: string) => url.slice(url.lastIndexOf("/") + 1);

function splitId(instanceId: string): { zone: string; name: string } {
  const [zone, name] = instanceId.split("/");
  if (!zone || !name)
    throw new BackendError("BadInstanceId", `GCP instance id ${instanceId} is not <zone>/<name>`, { retryable: false });
  return { zone, name };
}

function toInfo(i: GcpInstance, region: string): InstanceInfo {
  const nic = i.networkInterfaces?.[0];
  // A public instance's address is its NAT IP (none yet while it is being assigned), never its internal one.
  const hostname = nic?.accessConfigs?.length ? (nic.accessConfigs[0]?.natIP ?? null) : (nic?.networkIP ?? null);
  const state = ["PROVISIONING", "STAGING", "REPAIRING"].includes(i.status)
    ? "pending"
    : i.status === "RUNNING"
      ? "running"
      : "terminated";
  const zone = last(i.zone);
  return {
    instanceId: `${zone}/${i.name}`,
    state,
    hostname,
    region,
    backendData: { zone },
  };
}

export function gcpBackend(options: GcpBackendOptions): GatewayBackend {
  const c = options.credentials;
  const network = c.network ?? "default";
  const api = computeApi({
    projectId: c.project_id,
    key: c.service_account_key,
    tokenUri: endpoint("service_account_key.token_uri", c.service_account_key.token_uri ?? DEFAULT_TOKEN_URI),
    apiEndpoint: endpoint("api_endpoint", c.api_endpoint ?? DEFAULT_API_ENDPOINT),
    timeoutMs: options.timeoutMs ?? 20_000,
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    operationTimeoutMs: options.operationTimeoutMs ?? 60_000,
    retryDelayMs: options.retryDelayMs ?? 500,
  });

  /** A zone as the region (`us-central1-b`), or the region's first zone in name order, as dstack does. */
  async function zoneOf(region: string): Promise<string> {
    if (ZONE.test(region)) return region;
    const res = await api.call("GET", `/regions/${encodeURIComponent(region)}`);
    const zones = ((res.json as { zones?: string[] } | null)?.zones ?? []).map(last).sort();
    if (res.status === 404 || zones.length === 0) {
      throw new BackendError(
        "notFound",
        `GCP Error: notFound: region ${region} does not exist in project ${c.project_id}`,
        {
          retryable: false,
        },
      );
    }
    return zones[0]!;
  }

  async function getInstance(zone: string, name: string): Promise<GcpInstance | null> {
    const res = await api.call("GET", `/zones/${zone}/instances/${name}`);
    return res.status === 404 ? null : (res.json as GcpInstance);
  }

  return {
    type: "gcp",

    async ensureNetwork(spec): Promise<NetworkInfo> {
      const zone = await zoneOf(spec.region);
      const name = firewallName(network);
      const existing = await api.call("GET", `/global/firewalls/${name}`);
      if (existing.status === 404) {
        const res = await api.call(
          "POST",
          `/global/firewalls?requestId=${await deterministicUuid(`firewall:${c.project_id}:${name}`)}`,
          {
            name,
            description: "Gateplane gateways: HTTP (ACME HTTP-01, redirects) and HTTPS from anywhere",
            network: `global/networks/${network}`,
            direction: "INGRESS",
            priority: 1000,
            sourceRanges: ["0.0.0.0/0"],
            targetTags: [GATEWAY_NETWORK_TAG],
            allowed: [{ IPProtocol: "tcp", ports: ["80", "443"] }],
          },
        );
        // 409: another gateway's pass created it meanwhile.
        if (res.status === 200) await api.waitFor(res.json as Operation, "/global/operations");
      }
      return { zone, network, firewall: name };
    },

    async createInstance(spec: InstanceSpec, net: NetworkInfo): Promise<InstanceInfo> {
      const zone = typeof net.zone === "string" ? net.zone : await zoneOf(spec.region);
      const name = await instanceName(spec.name, spec.clientToken);
      const requestId = await deterministicUuid(`insert:${spec.clientToken}`);
      const res = await api.call("POST", `/zones/${zone}/instances?requestId=${requestId}`, {
        name,
        machineType: `zones/${zone}/machineTypes/${spec.instanceType ?? DEFAULT_MACHINE_TYPE}`,
        labels: labels(spec.tags),
        tags: { items: [GATEWAY_NETWORK_TAG] },
        disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: IMAGE_FAMILY, diskSizeGb: DISK_GB } }],
        networkInterfaces: [
          {
            network: `global/networks/${network}`,
            ...(spec.publicIp ? { accessConfigs: [{ type: "ONE_TO_ONE_NAT", name: "External NAT" }] } : {}),
          },
        ],
        metadata: { items: [{ key: "user-data", value: cloudUserData(spec, options.agentPackageUrl) }] },
        scheduling: { provisioningModel: "STANDARD", automaticRestart: true, onHostMaintenance: "MIGRATE" },
      });
      // 409 alreadyExists: this replica's instance (the name embeds its token) from a lost answer.
      if (res.status === 200) await api.waitFor(res.json as Operation, `/zones/${zone}/operations`);
      else if (res.status === 404)
        throw new BackendError("notFound", `GCP Error: notFound: zone ${zone}`, { retryable: false });
      const instance = await getInstance(zone, name);
      if (!instance) {
        // Accepted, not yet visible: a later pass describes it.
        return {
          instanceId: `${zone}/${name}`,
          state: "pending",
          hostname: null,
          region: spec.region,
          backendData: { zone },
        };
      }
      return toInfo(instance, spec.region);
    },

    async findInstance(spec) {
      const zone = await zoneOf(spec.region);
      const instance = await getInstance(zone, await instanceName(spec.name, spec.clientToken));
      return instance ? toInfo(instance, spec.region) : null;
    },

    async describeInstance(instanceId, region) {
      const { zone, name } = splitId(instanceId);
      const instance = await getInstance(zone, name);
      return instance ? toInfo(instance, region) : null;
    },

    async terminateInstance(instanceId) {
      const { zone, name } = splitId(instanceId);
      // Deletion is asynchronous; "going" is enough. The request id makes a repeat a no-op.
      await api.call(
        "DELETE",
        `/zones/${zone}/instances/${name}?requestId=${await deterministicUuid(`delete:${instanceId}`)}`,
      );
    },
  };
}
