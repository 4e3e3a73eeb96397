/**
 * @module
 * The EC2 side of a gateway: Ubuntu AMI, VPC and subnets, the project's security group, and the
 * instance itself (RunInstances with a ClientToken, DescribeInstances, TerminateInstances).
 */
import { BackendError, type InstanceInfo } from "../types.ts";
import { type AwsApi, filterParams, listParams, type QueryParams } from "./client.ts";
import { hasCode } from "./errors.ts";
import { child, list, text, type XmlNode } from "./xml.ts";

/** Canonical's AWS account: only its images are trusted as the gateway's OS. */
const CANONICAL_OWNER = "099720109477";
/** Newest first: 24.04 LTS, then 22.04 LTS (`hvm-ssd-gp3` since noble, `hvm-ssd` before). */
const UBUNTU_NAMES = [
  (arch: string) => `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${arch}-server-*`,
  (arch: string) => `ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-${arch}-server-*`,
];
export const DEFAULT_INSTANCE_TYPE = "t3.micro";
const ROOT_VOLUME_GB = 10;

export const fail = (code: string, message: string) => new BackendError(code, message, { retryable: false });

/** Graviton families carry a `g` after the generation digit (t4g, m7g, c6gn…); their AMIs are arm64. */
export const architectureOf = (instanceType: string): "arm64" | "amd64" =>
  /^[a-z]+\d+[a-z]*g[a-z]*\./.test(instanceType) && !/^(g|p)\d/.test(instanceType) ? "arm64" : "amd64";

export async function latestUbuntuAmi(api: AwsApi, arch: "arm64" | "amd64"): Promise<string> {
  for (const name of UBUNTU_NAMES) {
    const res = await api.ec2("DescribeImages", {
      ...listParams("Owner", [CANONICAL_OWNER]),
      ...filterParams({ name: [name(arch)], state: ["available"] }),
    });
    const newest = list(res, "imagesSet", "item")
      .filter((i) => text(i, "imageOwnerId") === CANONICAL_OWNER)
      .sort((a, b) => (text(b, "creationDate") ?? "").localeCompare(text(a, "creationDate") ?? ""))[0];
    const id = text(newest, "imageId");
    if (id) return id;
  }
  throw fail("NoImage", `AWS Error: no Canonical Ubuntu 24.04 or 22.04 (${arch}) image found in region ${api.region}`);
}

export async function resolveVpc(api: AwsApi, vpcId: string | undefined): Promise<string> {
  if (vpcId) {
    try {
      const res = await api.ec2("DescribeVpcs", listParams("VpcId", [vpcId]));
      const found = text(list(res, "vpcSet", "item")[0], "vpcId");
      if (found) return found;
    } catch (e) {
      if (!hasCode(e, "InvalidVpcID.NotFound")) throw e;
    }
    throw fail("InvalidVpcID.NotFound", `AWS Error: vpc_id ${vpcId} does not exist in region ${api.region}`);
  }
  const res = await api.ec2("DescribeVpcs", filterParams({ "is-default": ["true"] }));
  const found = text(list(res, "vpcSet", "item")[0], "vpcId");
  if (!found) {
    throw fail(
      "NoDefaultVpc",
      `AWS Error: region ${api.region} has no default VPC; set vpc_id in the project's aws backend credentials`,
    );
  }
  return found;
}

export interface SubnetInfo {
  id: string;
  az: string;
  /** Its route table sends 0.0.0.0/0 to an internet gateway. */
  public: boolean;
}

/**
 * The VPC's available subnets, each classed public or private by its route table (an explicit
 * association, else the VPC's main table): public when 0.0.0.0/0 goes to an internet gateway.
 * `MapPublicIpOnLaunch` is not the test: it is only a default, and the instance asks for its
 * public address explicitly.
 */
export async function describeSubnets(api: AwsApi, vpcId: string): Promise<SubnetInfo[]> {
  const [subnetsRes, tablesRes] = await Promise.all([
    api.ec2("DescribeSubnets", filterParams({ "vpc-id": [vpcId] })),
    api.ec2("DescribeRouteTables", filterParams({ "vpc-id": [vpcId] })),
  ]);
  const tables = list(tablesRes, "routeTableSet", "item");
  const toIgw = (t: XmlNode | undefined) =>
    list(t, "routeSet", "item").some(
      (r) => text(r, "destinationCidrBlock") === "0.0.0.0/0" && (text(r, "gatewayId") ?? "").startsWith("igw-"),
    );
  const main = tables.find((t) => list(t, "associationSet", "item").some((a) => text(a, "main") === "true"));
  return list(subnetsRes, "subnetSet", "item")
    .filter((s) => text(s, "state") === "available")
    .map((s) => {
      const id = text(s, "subnetId") ?? "";
      const own = tables.find((t) => list(t, "associationSet", "item").some((a) => text(a, "subnetId") === id));
      return { id, az: text(s, "availabilityZone") ?? "", public: toIgw(own ?? main) };
    })
    .sort((a, b) => a.az.localeCompare(b.az) || a.id.localeCompare(b.id));
}

/** Subnets of the wanted kind, or an error naming the region and VPC. */
export function pickSubnets(subnets: SubnetInfo[], publicIp: boolean, vpcId: string, region: string): SubnetInfo[] {
  const fit = subnets.filter((s) => s.public === publicIp);
  if (fit.length > 0) return fit;
  const why = publicIp
    ? "a public gateway needs a subnet whose route table sends 0.0.0.0/0 to an internet gateway"
    : "a private gateway (public_ip: false) needs a subnet without a route to an internet gateway, e.g. behind a NAT gateway";
  throw fail(
    "NoSubnet",
    `AWS Error: no ${publicIp ? "public" : "private"} subnet in VPC ${vpcId} of region ${region}: ${why}`,
  );
}

export const securityGroupName = (projectName: string) => `gateplane-gateway-${projectName}`;
const INGRESS_PORTS = [80, 443] as const;

/** Finds or creates the project's gateway security group with TCP 80 and 443 open to the world. */
export async function ensureSecurityGroup(
  api: AwsApi,
  vpcId: string,
  projectName: string,
  tags: Record<string, string>,
): Promise<string> {
  const name = securityGroupName(projectName);
  const find = async () => {
    const res = await api.ec2("DescribeSecurityGroups", filterParams({ "group-name": [name], "vpc-id": [vpcId] }));
    return list(res, "securityGroupInfo", "item")[0] ?? null;
  };
  let group = await find();
  if (!group) {
    try {
      await api.ec2("CreateSecurityGroup", {
        GroupName: name,
        GroupDescription: "Gateplane gateways: HTTP and HTTPS in (agents pull their configuration; no SSH)",
        VpcId: vpcId,
        ...tagSpecification(1, "security-group", { ...tags, Name: name }),
      });
    } catch (e) {
      // A concurrent or earlier (answer lost) create made it: use that one.
      if (!hasCode(e, "InvalidGroup.Duplicate")) throw e;
    }
    group = await find();
    if (!group)
      throw new BackendError("Pending", `AWS Error: security group ${name} not visible yet`, { retryable: true });
  }
  const groupId = text(group, "groupId")!;
  const open = new Set(
    list(group, "ipPermissions", "item")
      .filter(
        (p) =>
          text(p, "ipProtocol") === "tcp" &&
          text(p, "fromPort") === text(p, "toPort") &&
          list(p, "ipRanges", "item").some((r) => text(r, "cidrIp") === "0.0.0.0/0"),
      )
      .map((p) => Number(text(p, "fromPort"))),
  );
  const missing = INGRESS_PORTS.filter((port) => !open.has(port));
  if (missing.length > 0) {
    const params: QueryParams = { GroupId: groupId };
    missing.forEach((port, i) => {
      const p = `IpPermissions.${i + 1}`;
      Object.assign(params, {
        [`${p}.IpProtocol`]: "tcp",
        [`${p}.FromPort`]: port,
        [`${p}.ToPort`]: port,
        [`${p}.IpRanges.1.CidrIp`]: "0.0.0.0/0",
      });
    });
    try {
      await api.ec2("AuthorizeSecurityGroupIngress", params);
    } catch (e) {
      if (!hasCode(e, "InvalidPermission.Duplicate")) throw e;
    }
  }
  return groupId;
}

function tagSpecification(index: number, resourceType: string, tags: Record<string, string>): QueryParams {
  const params: QueryParams = { [`TagSpecification.${index}.ResourceType`]: resourceType };
  Object.entries(tags).forEach(([key, value], i) => {
    params[`TagSpecification.${index}.Tag.${i + 1}.Key`] = key;
    params[`TagSpecification.${index}.Tag.${i + 1}.Value`] = value;
  });
  return params;
}

export interface RunSpec {
  clientToken: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  securityGroupId: string;
  publicIp: boolean;
  userData: string;
  tags: Record<string, string>;
}

export async function runInstance(api: AwsApi, spec: RunSpec): Promise<InstanceInfo> {
  const res = await api.ec2("RunInstances", {
    ClientToken: spec.clientToken,
    ImageId: spec.imageId,
    InstanceType: spec.instanceType,
    MinCount: 1,
    MaxCount: 1,
    UserData: base64(spec.userData),
    "NetworkInterface.1.DeviceIndex": 0,
    "NetworkInterface.1.SubnetId": spec.subnetId,
    "NetworkInterface.1.AssociatePublicIpAddress": spec.publicIp,
    "NetworkInterface.1.DeleteOnTermination": true,
    "NetworkInterface.1.SecurityGroupId.1": spec.securityGroupId,
    "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
    "BlockDeviceMapping.1.Ebs.VolumeSize": ROOT_VOLUME_GB,
    "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
    "BlockDeviceMapping.1.Ebs.DeleteOnTermination": true,
    // IMDSv2 only: nothing on the host needs the instance metadata, so no token-less access.
    "MetadataOptions.HttpTokens": "required",
    ...tagSpecification(1, "instance", spec.tags),
    ...tagSpecification(2, "volume", spec.tags),
  });
  const instance = list(res, "instancesSet", "item")[0];
  if (!instance)
    throw new BackendError("InvalidResponse", "AWS Error: RunInstances answered without an instance", {
      retryable: true,
    });
  return toInfo(instance, api.region, spec.publicIp);
}

async function describe(api: AwsApi, params: QueryParams): Promise<XmlNode[]> {
  const res = await api.ec2("DescribeInstances", params);
  return list(res, "reservationSet", "item").flatMap((r) => list(r, "instancesSet", "item"));
}

export async function findByClientToken(api: AwsApi, clientToken: string): Promise<InstanceInfo | null> {
  const found = await describe(api, filterParams({ "client-token": [clientToken] }));
  const live = found.find((i) => !["shutting-down", "terminated"].includes(stateName(i))) ?? found[0];
  return live ? toInfo(live, api.region, null) : null;
}

export async function describeInstance(api: AwsApi, instanceId: string): Promise<InstanceInfo | null> {
  try {
    const [instance] = await describe(api, listParams("InstanceId", [instanceId]));
    return instance ? toInfo(instance, api.region, null) : null;
  } catch (e) {
    if (hasCode(e, "InvalidInstanceID.NotFound")) return null;
    throw e;
  }
}

export async function terminateInstance(api: AwsApi, instanceId: string): Promise<void> {
  try {
    await api.ec2("TerminateInstances", listParams("InstanceId", [instanceId]));
  } catch (e) {
    if (!hasCode(e, "InvalidInstanceID.NotFound")) throw e;
  }
}

const stateName = (i: XmlNode) => text(child(i, "instanceState"), "name") ?? "pending";

/**
 * `publicIp` null: decide from the instance itself (an instance asked for a public address has
 * one once it runs). The hostname is the address clients reach: public IP, else private IP.
 */
function toInfo(i: XmlNode, region: string, publicIp: boolean | null): InstanceInfo {
  const name = stateName(i);
  const state = name === "running" ? "running" : name === "pending" ? "pending" : "terminated";
  const publicAddress = text(i, "ipAddress");
  const privateAddress = text(i, "privateIpAddress");
  const hostname = publicAddress ?? (publicIp === true ? null : privateAddress);
  return {
    instanceId: text(i, "instanceId") ?? "",
    state,
    hostname: hostname || null,
    region,
    backendData: {
      availability_zone: text(child(i, "placement"), "availabilityZone"),
      subnet_id: text(i, "subnetId"),
      private_ip: privateAddress,
    },
  };
}

/** Base64 of the UTF-8 bytes (btoa alone only takes Latin-1). */
function base64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
