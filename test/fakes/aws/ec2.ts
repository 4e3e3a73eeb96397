/**
 * EC2 actions of the fake (Query API `2016-11-15`), with the checks EC2 makes on them: ids that
 * exist, ClientToken idempotency (same token + same parameters → same instance, different
 * parameters → IdempotentParameterMismatch), 16 KiB user-data, duplicate rules and group names.
 */
import { createHash } from "node:crypto";
import { ACCOUNT, type FakeAwsState, hex, type Instance, type Permission, STATE_CODES, type Tag } from "./state.ts";
import {
  AwsFault,
  ec2Response,
  el,
  filtersOf,
  glob,
  groups,
  items,
  leaf,
  listOf,
  type Params,
  required,
} from "./wire.ts";

export interface Ec2Options {
  /** DescribeInstances calls that see an instance pending before it runs. */
  describesToRunning: number;
}

const notFound = (code: string, what: string, id: string) =>
  new AwsFault(400, code, `The ${what} '${id}' does not exist`);

function matches(filters: { name: string; values: string[] }[], get: (name: string) => string[] | null): boolean {
  return filters.every((f) => {
    const actual = get(f.name);
    if (actual === null) throw new AwsFault(400, "InvalidParameterValue", `The filter '${f.name}' is invalid`);
    return f.values.some((pattern) => actual.some((a) => glob(pattern, a)));
  });
}

const tagFilter = (tags: Tag[], name: string) =>
  name.startsWith("tag:") ? tags.filter((t) => t.key === name.slice(4)).map((t) => t.value) : null;

const renderTags = (tags: Tag[]) => items("tagSet", tags, (t) => leaf("key", t.key) + leaf("value", t.value));

function tagSpecs(params: Params): Map<string, Tag[]> {
  const specs = new Map<string, Tag[]>();
  for (const g of groups(params, "TagSpecification")) {
    const type = g.get("ResourceType") ?? "";
    const tags = groups(g, "Tag").map((t) => ({ key: t.get("Key") ?? "", value: t.get("Value") ?? "" }));
    for (const t of tags) {
      if (!t.key || t.key.startsWith("aws:"))
        throw new AwsFault(400, "InvalidParameterValue", `Tag key '${t.key}' is invalid`);
    }
    if (tags.length > 50) throw new AwsFault(400, "TagLimitExceeded", "The maximum number of tags per resource is 50");
    specs.set(type, tags);
  }
  return specs;
}

function renderInstance(state: FakeAwsState, i: Instance): string {
  const groupsXml = items(
    "groupSet",
    i.groupIds,
    (id) => leaf("groupId", id) + leaf("groupName", state.securityGroups.find((g) => g.id === id)?.name ?? ""),
  );
  return (
    leaf("instanceId", i.id) +
    leaf("imageId", i.imageId) +
    el("instanceState", leaf("code", STATE_CODES[i.state]), leaf("name", i.state)) +
    leaf("privateDnsName", `ip-${i.privateIp.replace(/\./g, "-")}.${i.region}.compute.internal`) +
    leaf("dnsName", i.publicIp ? `ec2-${i.publicIp.replace(/\./g, "-")}.${i.region}.compute.amazonaws.com` : "") +
    leaf("amiLaunchIndex", 0) +
    leaf("instanceType", i.instanceType) +
    leaf("launchTime", i.launchTime) +
    el("placement", leaf("availabilityZone", i.az), leaf("groupName", ""), leaf("tenancy", "default")) +
    el("monitoring", leaf("state", "disabled")) +
    (i.state === "terminated" ? "" : leaf("subnetId", i.subnetId) + leaf("vpcId", i.vpcId)) +
    (i.state === "terminated" ? "" : leaf("privateIpAddress", i.privateIp)) +
    (i.state === "running" || i.state === "pending" ? leaf("ipAddress", i.publicIp) : "") +
    groupsXml +
    leaf("architecture", "x86_64") +
    leaf("rootDeviceType", "ebs") +
    leaf("rootDeviceName", "/dev/sda1") +
    leaf("clientToken", i.clientToken) +
    renderTags(i.tags) +
    leaf("virtualizationType", "hvm") +
    leaf("hypervisor", "xen") +
    el("metadataOptions", leaf("state", "applied"), leaf("httpTokens", i.metadataHttpTokens))
  );
}

export function handleEc2(
  state: FakeAwsState,
  region: string,
  action: string,
  params: Params,
  options: Ec2Options,
): string {
  state.region(region);
  const here = <T extends { region: string }>(list: T[]) => list.filter((x) => x.region === region);

  switch (action) {
    case "DescribeImages": {
      const owners = listOf(params, "Owner");
      const filters = filtersOf(params);
      const found = here(state.images).filter(
        (img) =>
          (owners.length === 0 || owners.includes(img.owner) || (owners.includes("self") && img.owner === ACCOUNT)) &&
          matches(filters, (n) =>
            n === "name"
              ? [img.name]
              : n === "state"
                ? ["available"]
                : n === "architecture"
                  ? [img.architecture]
                  : n === "owner-id"
                    ? [img.owner]
                    : null,
          ),
      );
      return ec2Response(
        action,
        items("imagesSet", found, (img) =>
          [
            leaf("imageId", img.id),
            leaf("imageLocation", `${img.owner}/${img.name}`),
            leaf("imageState", "available"),
            leaf("imageOwnerId", img.owner),
            leaf("creationDate", img.created),
            leaf("isPublic", true),
            leaf("architecture", img.architecture),
            leaf("imageType", "machine"),
            leaf("name", img.name),
            leaf("rootDeviceType", "ebs"),
            leaf("rootDeviceName", "/dev/sda1"),
            leaf("virtualizationType", "hvm"),
            leaf("hypervisor", "xen"),
          ].join(""),
        ),
      );
    }
    case "DescribeVpcs": {
      const ids = listOf(params, "VpcId");
      for (const id of ids) {
        if (!here(state.vpcs).some((v) => v.id === id)) throw notFound("InvalidVpcID.NotFound", "vpc ID", id);
      }
      const filters = filtersOf(params);
      const found = here(state.vpcs).filter(
        (v) =>
          (ids.length === 0 || ids.includes(v.id)) &&
          matches(filters, (n) => (n === "is-default" ? [String(v.isDefault)] : n === "vpc-id" ? [v.id] : null)),
      );
      return ec2Response(
        action,
        items("vpcSet", found, (v) =>
          [
            leaf("vpcId", v.id),
            leaf("ownerId", ACCOUNT),
            leaf("state", "available"),
            leaf("cidrBlock", v.cidr),
            leaf("dhcpOptionsId", "dopt-0123456789abcdef0"),
            leaf("instanceTenancy", "default"),
            leaf("isDefault", v.isDefault),
          ].join(""),
        ),
      );
    }
    case "DescribeSubnets": {
      const filters = filtersOf(params);
      const found = here(state.subnets).filter((s) =>
        matches(filters, (n) =>
          n === "vpc-id" ? [s.vpcId] : n === "availability-zone" ? [s.az] : n === "subnet-id" ? [s.id] : null,
        ),
      );
      return ec2Response(
        action,
        items("subnetSet", found, (s) =>
          [
            leaf("subnetId", s.id),
            leaf("subnetArn", `arn:aws:ec2:${region}:${ACCOUNT}:subnet/${s.id}`),
            leaf("state", "available"),
            leaf("ownerId", ACCOUNT),
            leaf("vpcId", s.vpcId),
            leaf("cidrBlock", s.cidr),
            leaf("availableIpAddressCount", 250),
            leaf("availabilityZone", s.az),
            leaf("availabilityZoneId", `${region.slice(0, 3)}-az${s.az.slice(-1) === "a" ? 1 : 2}`),
            leaf("defaultForAz", false),
            leaf("mapPublicIpOnLaunch", false),
          ].join(""),
        ),
      );
    }
    case "DescribeRouteTables": {
      const filters = filtersOf(params);
      const found = here(state.routeTables).filter((t) => matches(filters, (n) => (n === "vpc-id" ? [t.vpcId] : null)));
      return ec2Response(
        action,
        items("routeTableSet", found, (t) =>
          [
            leaf("routeTableId", t.id),
            leaf("vpcId", t.vpcId),
            leaf("ownerId", ACCOUNT),
            items("routeSet", t.routes, (r) =>
              [
                leaf("destinationCidrBlock", r.destination),
                leaf("gatewayId", r.gatewayId),
                leaf("state", "active"),
                leaf("origin", r.gatewayId === "local" ? "CreateRouteTable" : "CreateRoute"),
              ].join(""),
            ),
            items(
              "associationSet",
              [
                ...(t.main ? [{ main: true, subnetId: null as string | null }] : []),
                ...t.subnetIds.map((subnetId) => ({ main: false, subnetId })),
              ],
              (a) =>
                [
                  leaf(
                    "routeTableAssociationId",
                    `rtbassoc-${createHash("sha1")
                      .update(t.id + a.subnetId)
                      .digest("hex")
                      .slice(0, 17)}`,
                  ),
                  leaf("routeTableId", t.id),
                  a.subnetId ? leaf("subnetId", a.subnetId) : "",
                  leaf("main", a.main),
                  el("associationState", leaf("state", "associated")),
                ].join(""),
            ),
            items("tagSet", [], () => ""),
            items("propagatingVgwSet", [], () => ""),
          ].join(""),
        ),
      );
    }
    case "DescribeSecurityGroups": {
      const ids = listOf(params, "GroupId");
      const filters = filtersOf(params);
      for (const id of ids) {
        if (!here(state.securityGroups).some((g) => g.id === id)) {
          throw new AwsFault(400, "InvalidGroup.NotFound", `The security group '${id}' does not exist`);
        }
      }
      const found = here(state.securityGroups).filter(
        (g) =>
          (ids.length === 0 || ids.includes(g.id)) &&
          matches(filters, (n) =>
            n === "group-name"
              ? [g.name]
              : n === "vpc-id"
                ? [g.vpcId]
                : n === "group-id"
                  ? [g.id]
                  : tagFilter(g.tags, n),
          ),
      );
      const permission = (p: Permission) =>
        [
          leaf("ipProtocol", p.protocol),
          leaf("fromPort", p.from),
          leaf("toPort", p.to),
          items("groups", [], () => ""),
          items("ipRanges", [p.cidr], (c) => leaf("cidrIp", c)),
          items("ipv6Ranges", [], () => ""),
          items("prefixListIds", [], () => ""),
        ].join("");
      return ec2Response(
        action,
        items("securityGroupInfo", found, (g) =>
          [
            leaf("ownerId", ACCOUNT),
            leaf("groupId", g.id),
            leaf("groupName", g.name),
            leaf("groupDescription", g.description),
            leaf("vpcId", g.vpcId),
            items("ipPermissions", g.ingress, permission),
            items(
              "ipPermissionsEgress",
              [{ protocol: "-1", from: 0, to: 0, cidr: "0.0.0.0/0" }],
              (p) => leaf("ipProtocol", p.protocol) + items("ipRanges", [p.cidr], (c) => leaf("cidrIp", c)),
            ),
            renderTags(g.tags),
          ].join(""),
        ),
      );
    }
    case "CreateSecurityGroup": {
      const name = required(params, "GroupName");
      const description = required(params, "GroupDescription");
      const vpcId = required(params, "VpcId");
      if (!here(state.vpcs).some((v) => v.id === vpcId)) throw notFound("InvalidVpcID.NotFound", "vpc ID", vpcId);
      if (here(state.securityGroups).some((g) => g.name === name && g.vpcId === vpcId)) {
        throw new AwsFault(
          400,
          "InvalidGroup.Duplicate",
          `The security group '${name}' already exists for VPC '${vpcId}'`,
        );
      }
      const group = {
        id: `sg-${hex(17)}`,
        region,
        vpcId,
        name,
        description,
        ingress: [],
        tags: tagSpecs(params).get("security-group") ?? [],
      };
      state.securityGroups.push(group);
      return ec2Response(action, leaf("return", true) + leaf("groupId", group.id));
    }
    case "AuthorizeSecurityGroupIngress": {
      const id = required(params, "GroupId");
      const group = here(state.securityGroups).find((g) => g.id === id);
      if (!group) throw new AwsFault(400, "InvalidGroup.NotFound", `The security group '${id}' does not exist`);
      const wanted: Permission[] = groups(params, "IpPermissions").flatMap((p) =>
        groups(p, "IpRanges").map((r) => ({
          protocol: p.get("IpProtocol") ?? "",
          from: Number(p.get("FromPort")),
          to: Number(p.get("ToPort")),
          cidr: r.get("CidrIp") ?? "",
        })),
      );
      if (wanted.length === 0) throw new AwsFault(400, "MissingParameter", "No permissions given");
      const dup = wanted.find((w) =>
        group.ingress.some((p) => p.protocol === w.protocol && p.from === w.from && p.to === w.to && p.cidr === w.cidr),
      );
      if (dup) {
        throw new AwsFault(
          400,
          "InvalidPermission.Duplicate",
          `the specified rule "peer: ${dup.cidr}, ${dup.protocol.toUpperCase()}, from port: ${dup.from}, to port: ${dup.to}, ALLOW" already exists`,
        );
      }
      group.ingress.push(...wanted);
      return ec2Response(action, leaf("return", true));
    }
    case "RunInstances":
      return runInstances(state, region, params);
    case "DescribeInstances": {
      const ids = listOf(params, "InstanceId");
      for (const id of ids) {
        if (!/^i-[0-9a-f]{8,17}$/.test(id)) {
          throw new AwsFault(400, "InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
        }
        if (!here(state.instances).some((i) => i.id === id))
          throw notFound("InvalidInstanceID.NotFound", "instance ID", id);
      }
      const filters = filtersOf(params);
      const found = here(state.instances).filter(
        (i) =>
          (ids.length === 0 || ids.includes(i.id)) &&
          matches(filters, (n) =>
            n === "client-token"
              ? [i.clientToken]
              : n === "instance-state-name"
                ? [i.state]
                : n === "instance-id"
                  ? [i.id]
                  : tagFilter(i.tags, n),
          ),
      );
      for (const i of found) {
        // Answer with the state this call saw, then move on: pending runs after N looks.
        i.describes++;
      }
      const body = items("reservationSet", [...new Set(found.map((i) => i.reservationId))], (rid) => {
        const members = found.filter((i) => i.reservationId === rid);
        return (
          leaf("reservationId", rid) +
          leaf("ownerId", ACCOUNT) +
          items("groupSet", [], () => "") +
          items("instancesSet", members, (i) => renderInstance(state, i))
        );
      });
      for (const i of found) {
        if (i.state === "pending" && i.describes >= options.describesToRunning) i.state = "running";
        else if (i.state === "shutting-down") i.state = "terminated";
      }
      return ec2Response(action, body);
    }
    case "TerminateInstances": {
      const ids = listOf(params, "InstanceId");
      if (ids.length === 0)
        throw new AwsFault(400, "MissingParameter", "The request must contain the parameter InstanceId");
      const found = ids.map((id) => {
        const i = here(state.instances).find((x) => x.id === id);
        if (!i) throw notFound("InvalidInstanceID.NotFound", "instance ID", id);
        return i;
      });
      const body = items("instancesSet", found, (i) => {
        const previous = i.state;
        if (i.state === "pending" || i.state === "running") i.state = "shutting-down";
        return (
          leaf("instanceId", i.id) +
          el("currentState", leaf("code", STATE_CODES[i.state]), leaf("name", i.state)) +
          el("previousState", leaf("code", STATE_CODES[previous]), leaf("name", previous))
        );
      });
      return ec2Response(action, body);
    }
    default:
      throw new AwsFault(400, "InvalidAction", `The action ${action} is not valid for this web service.`);
  }
}

function runInstances(state: FakeAwsState, region: string, params: Params): string {
  const imageId = required(params, "ImageId");
  const instanceType = params.get("InstanceType") ?? "m1.small";
  const token = params.get("ClientToken") ?? "";
  if (token.length > 64) throw new AwsFault(400, "InvalidParameterValue", "ClientToken is longer than 64 characters");
  if (params.get("MinCount") !== "1" || params.get("MaxCount") !== "1") {
    throw new AwsFault(400, "InvalidParameterValue", "This fake launches exactly one instance (MinCount=MaxCount=1)");
  }
  const fingerprint = createHash("sha256")
    .update(JSON.stringify([...params.entries()].filter(([k]) => k !== "ClientToken" && k !== "Action").sort()))
    .digest("hex");
  if (token) {
    const earlier = state.instances.find((i) => i.region === region && i.clientToken === token);
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) {
        throw new AwsFault(
          400,
          "IdempotentParameterMismatch",
          `Arguments on this idempotent request are inconsistent with arguments used in previous request(s).`,
        );
      }
      return reservation(state, earlier);
    }
  }
  if (!state.images.some((i) => i.id === imageId && i.region === region)) {
    throw new AwsFault(400, "InvalidAMIID.NotFound", `The image id '[${imageId}]' does not exist`);
  }
  if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(instanceType)) {
    throw new AwsFault(400, "InvalidParameterValue", `Invalid value '${instanceType}' for InstanceType.`);
  }
  const nics = groups(params, "NetworkInterface");
  if (nics.length > 0 && (params.has("SubnetId") || listOf(params, "SecurityGroupId").length > 0)) {
    throw new AwsFault(
      400,
      "InvalidParameterCombination",
      "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request",
    );
  }
  const nic = nics[0] ?? new Map<string, string>();
  const subnetId = nic.get("SubnetId") ?? params.get("SubnetId");
  const subnet = state.subnets.find((s) => s.id === subnetId && s.region === region);
  if (!subnet) throw new AwsFault(400, "InvalidSubnetID.NotFound", `The subnet ID '${subnetId}' does not exist`);
  const groupIds = nics.length > 0 ? listOf(nic, "SecurityGroupId") : listOf(params, "SecurityGroupId");
  for (const id of groupIds) {
    const g = state.securityGroups.find((x) => x.id === id && x.region === region);
    if (!g) throw new AwsFault(400, "InvalidGroup.NotFound", `The security group '${id}' does not exist`);
    if (g.vpcId !== subnet.vpcId) {
      throw new AwsFault(
        400,
        "InvalidParameter",
        `Security group ${id} and subnet ${subnet.id} belong to different networks.`,
      );
    }
  }
  const raw = params.get("UserData") ?? "";
  if (raw && !/^[A-Za-z0-9+/]*={0,2}$/.test(raw))
    throw new AwsFault(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data.");
  const userData = Buffer.from(raw, "base64").toString("utf8");
  if (Buffer.byteLength(userData) > 16 * 1024) {
    throw new AwsFault(400, "InvalidParameterValue", "User data is limited to 16384 bytes");
  }
  const specs = tagSpecs(params);
  const wantsPublic = (nic.get("AssociatePublicIpAddress") ?? "false") === "true";
  const root = groups(params, "BlockDeviceMapping")[0];
  const instance: Instance = {
    id: `i-${hex(17)}`,
    region,
    reservationId: `r-${hex(17)}`,
    imageId,
    instanceType,
    state: "pending",
    describes: 0,
    subnetId: subnet.id,
    vpcId: subnet.vpcId,
    az: subnet.az,
    privateIp: state.nextIp(subnet.cidr.split(".").slice(0, 2).join(".")),
    publicIp: wantsPublic ? state.nextIp("54.200") : null,
    groupIds,
    clientToken: token,
    fingerprint,
    userData,
    tags: specs.get("instance") ?? [],
    volumeTags: specs.get("volume") ?? [],
    launchTime: new Date().toISOString(),
    metadataHttpTokens: params.get("MetadataOptions.HttpTokens") ?? "optional",
    rootVolumeGb: root?.get("Ebs.VolumeSize") ? Number(root.get("Ebs.VolumeSize")) : null,
  };
  state.instances.push(instance);
  return reservation(state, instance);
}

function reservation(state: FakeAwsState, i: Instance): string {
  return ec2Response(
    "RunInstances",
    leaf("reservationId", i.reservationId) +
      leaf("ownerId", ACCOUNT) +
      items("groupSet", [], () => "") +
      items("instancesSet", [i], (x) => renderInstance(state, x)),
  );
}
