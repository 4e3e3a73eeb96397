/**
 * @module
 * The `aws` backend: EC2 instances for gateway replicas and, for `certificate: {type: acm}`, an
 * Application Load Balancer in front of them. Raw Query API calls signed with SigV4 (aws4fetch);
 * no SDK in the Worker.
 */

import type { BackendCredentials } from "../../../schema/backend-credentials.ts";
import { EC2_USER_DATA_LIMIT, renderCloudInit } from "../clouds/cloud-init.ts";
import type { GatewayBackend, LoadBalancerSpec, NetworkInfo } from "../types.ts";
import { AwsApi } from "./client.ts";
import {
  architectureOf,
  DEFAULT_INSTANCE_TYPE,
  describeInstance,
  describeSubnets,
  ensureSecurityGroup,
  fail,
  findByClientToken,
  latestUbuntuAmi,
  pickSubnets,
  resolveVpc,
  runInstance,
  terminateInstance,
} from "./ec2.ts";
import {
  deleteLoadBalancer,
  deregisterTarget,
  ensureLoadBalancer,
  type LoadBalancerData,
  loadBalancerSubnets,
  registerTarget,
} from "./elb.ts";

export interface AwsBackendOptions {
  credentials: BackendCredentials<"aws">;
  /** The agent package (https) the instance's cloud-init installs. */
  agentPackageUrl: string | undefined;
  /** In-call retries of throttling/5xx/timeouts before the reconciler's schedule takes over. */
  retries?: number;
  retryBaseMs?: number;
}

const DEFAULT_TIMEOUT_SECONDS = 20;

interface AwsNetwork extends NetworkInfo {
  vpc_id: string;
  security_group_id: string;
  subnet_ids: string[];
}

/** Spreads replicas over the fitting subnets, stably for one replica (its token survives retries). */
function pickIndex(token: string, n: number): number {
  let h = 0;
  for (const c of token) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % n;
}

export function awsBackend(options: AwsBackendOptions): GatewayBackend {
  const { credentials } = options;
  const apis = new Map<string, AwsApi>();
  const api = (region: string) => {
    let a = apis.get(region);
    if (!a) {
      a = new AwsApi({
        access: credentials,
        region,
        timeoutMs: (credentials.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
        retries: options.retries ?? 3,
        retryBaseMs: options.retryBaseMs ?? 250,
      });
      apis.set(region, a);
    }
    return a;
  };
  /** The project's security group carries project-level tags only: every gateway shares it. */
  const groupTags = (projectName: string) => ({
    owner: "gateplane",
    gateplane_project: projectName,
    gateplane_role: "gateway",
  });

  async function network(region: string, projectName: string, publicIp: boolean) {
    const a = api(region);
    const vpcId = await resolveVpc(a, credentials.vpc_id);
    const subnets = pickSubnets(await describeSubnets(a, vpcId), publicIp, vpcId, region);
    const securityGroupId = await ensureSecurityGroup(a, vpcId, projectName, groupTags(projectName));
    return { vpcId, subnets, securityGroupId };
  }

  const targetGroup = (lb: Record<string, unknown>) => {
    const arn = (lb as LoadBalancerData).tg_arn;
    if (!arn) throw fail("NoTargetGroup", "AWS Error: the gateway's load balancer has no target group recorded");
    return arn;
  };

  return {
    type: "aws",
    async ensureNetwork(spec) {
      const n = await network(spec.region, spec.projectName, spec.publicIp);
      const info: AwsNetwork = {
        vpc_id: n.vpcId,
        security_group_id: n.securityGroupId,
        subnet_ids: n.subnets.map((s) => s.id),
      };
      return info;
    },
    async createInstance(spec, info) {
      const net = info as AwsNetwork;
      if (!options.agentPackageUrl) {
        throw fail(
          "NotConfigured",
          "AGENT_PACKAGE_URL is not set: cloud gateways install the agent package from that https URL",
        );
      }
      const userData = renderCloudInit({
        bootstrap: spec.bootstrap,
        router: spec.router,
        agentPackageUrl: options.agentPackageUrl,
      });
      if (new TextEncoder().encode(userData).length > EC2_USER_DATA_LIMIT) {
        throw fail("UserDataTooLarge", `the agent's cloud-init is larger than EC2's ${EC2_USER_DATA_LIMIT} bytes`);
      }
      const a = api(spec.region);
      const instanceType = spec.instanceType ?? DEFAULT_INSTANCE_TYPE;
      const imageId = await latestUbuntuAmi(a, architectureOf(instanceType));
      return runInstance(a, {
        clientToken: spec.clientToken,
        imageId,
        instanceType,
        subnetId: net.subnet_ids[pickIndex(spec.clientToken, net.subnet_ids.length)]!,
        securityGroupId: net.security_group_id,
        publicIp: spec.publicIp,
        userData,
        tags: { Name: spec.name, ...spec.tags },
      });
    },
    findInstance(spec) {
      return findByClientToken(api(spec.region), spec.clientToken);
    },
    describeInstance(instanceId, region) {
      return describeInstance(api(region), instanceId);
    },
    terminateInstance(instanceId, region) {
      return terminateInstance(api(region), instanceId);
    },
    async createLoadBalancer(spec: LoadBalancerSpec, _saved, progress) {
      const a = api(spec.region);
      const n = await network(spec.region, spec.projectName, spec.publicIp);
      const subnetIds = loadBalancerSubnets(n.subnets, n.vpcId, spec.region);
      const data = await ensureLoadBalancer(
        a,
        {
          gatewayId: spec.gatewayId,
          vpcId: n.vpcId,
          subnetIds,
          securityGroupId: n.securityGroupId,
          publicIp: spec.publicIp,
          certificateArn: spec.certificateArn,
          tags: { Name: `gp-${spec.projectName}-${spec.gatewayName}`, ...spec.tags },
        },
        (d) => progress({ ...d }),
      );
      return { hostname: data.dns_name, backendData: { ...data } };
    },
    deleteLoadBalancer(spec, saved) {
      return deleteLoadBalancer(api(spec.region), spec.gatewayId, (saved ?? {}) as LoadBalancerData);
    },
    registerReplica(instanceId, region, lb) {
      return registerTarget(api(region), targetGroup(lb), instanceId);
    },
    async deregisterReplica(instanceId, region, lb) {
      const arn = (lb as LoadBalancerData).tg_arn;
      if (arn) await deregisterTarget(api(region), arn, instanceId);
    },
  };
}
