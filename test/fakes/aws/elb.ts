/**
 * ELBv2 actions of the fake (Query API `2015-12-01`): "create" with an existing name and the same
 * settings returns the existing resource, as ELBv2 does; a target group in use by a listener cannot
 * be deleted; HTTPS listeners need a known ACM certificate; targets must be running instances.
 */
import {
  ACCOUNT,
  type FakeAwsState,
  hex,
  type Listener,
  type LoadBalancer,
  type Tag,
  type TargetGroup,
} from "./state.ts";
import { AwsFault, ELB_NS, el, groups, leaf, listOf, members, type Params, queryResponse, required } from "./wire.ts";

const ok = (action: string, body = "") => queryResponse(ELB_NS, action, body);
const tagsOf = (params: Params): Tag[] =>
  groups(params, "Tags.member").map((t) => ({ key: t.get("Key") ?? "", value: t.get("Value") ?? "" }));

const renderLb = (lb: LoadBalancer, state: FakeAwsState) =>
  [
    leaf("LoadBalancerArn", lb.arn),
    leaf("DNSName", lb.dnsName),
    leaf("CanonicalHostedZoneId", "Z32O12XQLNTSW2"),
    leaf("CreatedTime", lb.created),
    leaf("LoadBalancerName", lb.name),
    leaf("Scheme", lb.scheme),
    leaf("VpcId", lb.vpcId),
    el("State", leaf("Code", "active")),
    leaf("Type", lb.type),
    members(
      "AvailabilityZones",
      lb.subnetIds,
      (id) => leaf("ZoneName", state.subnets.find((s) => s.id === id)?.az ?? "") + leaf("SubnetId", id),
    ),
    members("SecurityGroups", lb.securityGroups, (id) => id),
    leaf("IpAddressType", "ipv4"),
  ].join("");

const renderTg = (tg: TargetGroup, state: FakeAwsState) =>
  [
    leaf("TargetGroupArn", tg.arn),
    leaf("TargetGroupName", tg.name),
    leaf("Protocol", tg.protocol),
    leaf("Port", tg.port),
    leaf("VpcId", tg.vpcId),
    leaf("HealthCheckProtocol", "HTTP"),
    leaf("HealthCheckPort", "traffic-port"),
    leaf("HealthCheckEnabled", true),
    leaf("HealthCheckIntervalSeconds", 30),
    leaf("HealthCheckTimeoutSeconds", 5),
    leaf("HealthyThresholdCount", 5),
    leaf("UnhealthyThresholdCount", 2),
    leaf("HealthCheckPath", tg.healthCheckPath),
    el("Matcher", leaf("HttpCode", tg.matcher)),
    members(
      "LoadBalancerArns",
      [
        ...new Set(
          state.listeners
            .filter((l) => l.action.type === "forward" && l.action.targetGroupArn === tg.arn)
            .map((l) => l.lbArn),
        ),
      ],
      (arn) => arn,
    ),
    leaf("TargetType", tg.targetType),
    leaf("IpAddressType", "ipv4"),
  ].join("");

const renderListener = (l: Listener) =>
  [
    leaf("ListenerArn", l.arn),
    leaf("LoadBalancerArn", l.lbArn),
    leaf("Port", l.port),
    leaf("Protocol", l.protocol),
    l.certificateArn ? members("Certificates", [l.certificateArn], (arn) => leaf("CertificateArn", arn)) : "",
    leaf("SslPolicy", l.sslPolicy),
    members("DefaultActions", [l.action], (a) =>
      a.type === "forward"
        ? leaf("Type", "forward") + leaf("TargetGroupArn", a.targetGroupArn)
        : leaf("Type", "redirect") +
          el(
            "RedirectConfig",
            leaf("Protocol", a.protocol),
            leaf("Port", a.port),
            leaf("Host", "#{host}"),
            leaf("Path", "/#{path}"),
            leaf("Query", "#{query}"),
            leaf("StatusCode", a.statusCode),
          ),
    ),
  ].join("");

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

export function handleElb(state: FakeAwsState, region: string, action: string, params: Params): string {
  state.region(region);
  const lbs = () => state.loadBalancers.filter((l) => l.region === region);
  const tgs = () => state.targetGroups.filter((t) => t.region === region);
  const lbNotFound = () => new AwsFault(400, "LoadBalancerNotFound", "One or more load balancers not found");
  const tgNotFound = () => new AwsFault(400, "TargetGroupNotFound", "One or more target groups not found");

  switch (action) {
    case "CreateLoadBalancer": {
      const name = required(params, "Name");
      if (!/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$/.test(name) || name.startsWith("internal-")) {
        throw new AwsFault(400, "ValidationError", `Load balancer name '${name}' is not valid`);
      }
      const subnetIds = listOf(params, "Subnets.member");
      const securityGroups = listOf(params, "SecurityGroups.member");
      const scheme = params.get("Scheme") ?? "internet-facing";
      const type = params.get("Type") ?? "application";
      const existing = lbs().find((l) => l.name === name);
      if (existing) {
        if (existing.scheme === scheme && existing.type === type && sameSet(existing.subnetIds, subnetIds)) {
          return ok(
            action,
            members("LoadBalancers", [existing], (l) => renderLb(l, state)),
          );
        }
        throw new AwsFault(
          400,
          "DuplicateLoadBalancerName",
          "A load balancer with the same name exists, but with different settings",
        );
      }
      const subnets = subnetIds.map((id) => {
        const s = state.subnets.find((x) => x.id === id && x.region === region);
        if (!s) throw new AwsFault(400, "SubnetNotFound", `The subnet ID '${id}' is not valid`);
        return s;
      });
      const azs = subnets.map((s) => s.az);
      if (new Set(azs).size !== azs.length) {
        throw new AwsFault(
          400,
          "InvalidConfigurationRequest",
          "A load balancer cannot be attached to multiple subnets in the same Availability Zone",
        );
      }
      if (type === "application" && azs.length < 2) {
        throw new AwsFault(
          400,
          "InvalidConfigurationRequest",
          "At least two subnets in two different Availability Zones must be specified",
        );
      }
      for (const id of securityGroups) {
        if (!state.securityGroups.some((g) => g.id === id && g.vpcId === subnets[0]?.vpcId)) {
          throw new AwsFault(400, "InvalidSecurityGroup", `One or more security groups are invalid: ${id}`);
        }
      }
      const id = hex(16);
      const lb: LoadBalancer = {
        arn: `arn:aws:elasticloadbalancing:${region}:${ACCOUNT}:loadbalancer/app/${name}/${id}`,
        region,
        name,
        dnsName: `${scheme === "internal" ? "internal-" : ""}${name}-${Number.parseInt(id.slice(0, 8), 16)}.${region}.elb.amazonaws.com`,
        scheme,
        type,
        vpcId: subnets[0]!.vpcId,
        subnetIds,
        securityGroups,
        tags: tagsOf(params),
        created: new Date().toISOString(),
      };
      state.loadBalancers.push(lb);
      return ok(
        action,
        members("LoadBalancers", [lb], (l) => renderLb(l, state)),
      );
    }
    case "DescribeLoadBalancers": {
      const arns = listOf(params, "LoadBalancerArns.member");
      const names = listOf(params, "Names.member");
      const found = lbs().filter(
        (l) => (arns.length === 0 || arns.includes(l.arn)) && (names.length === 0 || names.includes(l.name)),
      );
      if ((arns.length > 0 || names.length > 0) && found.length < arns.length + names.length) throw lbNotFound();
      return ok(
        action,
        members("LoadBalancers", found, (l) => renderLb(l, state)),
      );
    }
    case "DeleteLoadBalancer": {
      const arn = required(params, "LoadBalancerArn");
      // Deleting a load balancer that does not exist succeeds; its listeners go with it.
      const i = state.loadBalancers.findIndex((l) => l.arn === arn);
      if (i >= 0) state.loadBalancers.splice(i, 1);
      for (let j = state.listeners.length - 1; j >= 0; j--)
        if (state.listeners[j]!.lbArn === arn) state.listeners.splice(j, 1);
      return ok(action);
    }
    case "CreateTargetGroup": {
      const name = required(params, "Name");
      if (!/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$/.test(name)) {
        throw new AwsFault(400, "ValidationError", `Target group name '${name}' is not valid`);
      }
      const protocol = params.get("Protocol") ?? "";
      const port = Number(params.get("Port"));
      const vpcId = params.get("VpcId") ?? "";
      const targetType = params.get("TargetType") ?? "instance";
      const existing = tgs().find((t) => t.name === name);
      if (existing) {
        if (
          existing.protocol === protocol &&
          existing.port === port &&
          existing.vpcId === vpcId &&
          existing.targetType === targetType
        ) {
          return ok(
            action,
            members("TargetGroups", [existing], (t) => renderTg(t, state)),
          );
        }
        throw new AwsFault(
          400,
          "DuplicateTargetGroupName",
          "A target group with the same name exists, but with different settings",
        );
      }
      if (!state.vpcs.some((v) => v.id === vpcId && v.region === region)) {
        throw new AwsFault(400, "ValidationError", `The VPC ID '${vpcId}' is not found`);
      }
      const tg: TargetGroup = {
        arn: `arn:aws:elasticloadbalancing:${region}:${ACCOUNT}:targetgroup/${name}/${hex(16)}`,
        region,
        name,
        protocol,
        port,
        vpcId,
        targetType,
        healthCheckPath: params.get("HealthCheckPath") ?? "/",
        matcher: params.get("Matcher.HttpCode") ?? "200",
        targets: [],
        tags: tagsOf(params),
      };
      state.targetGroups.push(tg);
      return ok(
        action,
        members("TargetGroups", [tg], (t) => renderTg(t, state)),
      );
    }
    case "DescribeTargetGroups": {
      const arns = listOf(params, "TargetGroupArns.member");
      const names = listOf(params, "Names.member");
      const found = tgs().filter(
        (t) => (arns.length === 0 || arns.includes(t.arn)) && (names.length === 0 || names.includes(t.name)),
      );
      if ((arns.length > 0 || names.length > 0) && found.length < arns.length + names.length) throw tgNotFound();
      return ok(
        action,
        members("TargetGroups", found, (t) => renderTg(t, state)),
      );
    }
    case "DeleteTargetGroup": {
      const arn = required(params, "TargetGroupArn");
      if (state.listeners.some((l) => l.action.type === "forward" && l.action.targetGroupArn === arn)) {
        throw new AwsFault(400, "ResourceInUse", `Target group '${arn}' is currently in use by a listener or a rule`);
      }
      const i = state.targetGroups.findIndex((t) => t.arn === arn);
      if (i >= 0) state.targetGroups.splice(i, 1);
      return ok(action);
    }
    case "CreateListener": {
      const lbArn = required(params, "LoadBalancerArn");
      const lb = lbs().find((l) => l.arn === lbArn);
      if (!lb) throw lbNotFound();
      const protocol = required(params, "Protocol");
      const port = Number(required(params, "Port"));
      const certificateArn = params.get("Certificates.member.1.CertificateArn") ?? null;
      if (protocol === "HTTPS" && !certificateArn) {
        throw new AwsFault(400, "ValidationError", "A certificate must be specified for HTTPS listeners");
      }
      if (certificateArn && !state.certificates.has(certificateArn)) {
        throw new AwsFault(400, "CertificateNotFound", `Certificate '${certificateArn}' not found`);
      }
      const a = groups(params, "DefaultActions.member")[0];
      if (!a) throw new AwsFault(400, "ValidationError", "A default action must be specified");
      let listenerAction: Listener["action"];
      if (a.get("Type") === "forward") {
        const tgArn = a.get("TargetGroupArn") ?? "";
        const tg = tgs().find((t) => t.arn === tgArn);
        if (!tg) throw tgNotFound();
        if (tg.vpcId !== lb.vpcId)
          throw new AwsFault(400, "ValidationError", "The target group and load balancer are in different VPCs");
        listenerAction = { type: "forward", targetGroupArn: tgArn };
      } else if (a.get("Type") === "redirect") {
        listenerAction = {
          type: "redirect",
          protocol: a.get("RedirectConfig.Protocol") ?? "#{protocol}",
          port: a.get("RedirectConfig.Port") ?? "#{port}",
          statusCode: required(a, "RedirectConfig.StatusCode"),
        };
      } else {
        throw new AwsFault(400, "ValidationError", `Action type '${a.get("Type")}' is not supported by this fake`);
      }
      const listener: Listener = {
        arn: `arn:aws:elasticloadbalancing:${region}:${ACCOUNT}:listener/app/${lb.name}/${lb.arn.split("/").pop()}/${hex(16)}`,
        region,
        lbArn,
        port,
        protocol,
        certificateArn,
        sslPolicy: protocol === "HTTPS" ? (params.get("SslPolicy") ?? "ELBSecurityPolicy-2016-08") : null,
        action: listenerAction,
      };
      const existing = state.listeners.find((l) => l.lbArn === lbArn && l.port === port);
      if (existing) {
        const same = JSON.stringify({ ...existing, arn: "" }) === JSON.stringify({ ...listener, arn: "" });
        if (!same)
          throw new AwsFault(400, "DuplicateListener", "A listener already exists on this port for this load balancer");
        return ok(action, members("Listeners", [existing], renderListener));
      }
      state.listeners.push(listener);
      return ok(action, members("Listeners", [listener], renderListener));
    }
    case "DescribeListeners": {
      const lbArn = params.get("LoadBalancerArn");
      const arns = listOf(params, "ListenerArns.member");
      if (lbArn && !lbs().some((l) => l.arn === lbArn)) throw lbNotFound();
      const found = state.listeners.filter(
        (l) => l.region === region && (!lbArn || l.lbArn === lbArn) && (arns.length === 0 || arns.includes(l.arn)),
      );
      if (arns.length > 0 && found.length < arns.length) {
        throw new AwsFault(400, "ListenerNotFound", "One or more listeners not found");
      }
      return ok(action, members("Listeners", found, renderListener));
    }
    case "DeleteListener": {
      const arn = required(params, "ListenerArn");
      const i = state.listeners.findIndex((l) => l.arn === arn);
      if (i < 0) throw new AwsFault(400, "ListenerNotFound", "One or more listeners not found");
      state.listeners.splice(i, 1);
      return ok(action);
    }
    case "RegisterTargets":
    case "DeregisterTargets": {
      const arn = required(params, "TargetGroupArn");
      const tg = tgs().find((t) => t.arn === arn);
      if (!tg) throw tgNotFound();
      const targets = groups(params, "Targets.member").map((t) => ({
        id: t.get("Id") ?? "",
        port: Number(t.get("Port") ?? tg.port),
      }));
      if (action === "RegisterTargets") {
        for (const t of targets) {
          const instance = state.instances.find((i) => i.id === t.id && i.region === region);
          if (!instance || instance.vpcId !== tg.vpcId) {
            throw new AwsFault(
              400,
              "InvalidTarget",
              `The following targets are not in the target group VPC '${tg.vpcId}': '${t.id}'`,
            );
          }
          if (instance.state !== "running") {
            throw new AwsFault(
              400,
              "InvalidTarget",
              `The following targets are not in a running state and cannot be registered: '${t.id}'`,
            );
          }
          if (!tg.targets.some((x) => x.id === t.id && x.port === t.port)) tg.targets.push(t);
        }
      } else {
        tg.targets = tg.targets.filter((x) => !targets.some((t) => t.id === x.id && t.port === x.port));
      }
      return ok(action);
    }
    default:
      throw new AwsFault(400, "InvalidAction", `Could not find operation ${action} for version 2015-12-01`);
  }
}
