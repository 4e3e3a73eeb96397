/**
 * @module
 * The Application Load Balancer of an ACM gateway: ALB in subnets of ≥ 2 AZs, target group HTTP:80,
 * an HTTPS:443 listener with the ACM certificate and an HTTP:80 → HTTPS redirect. Names derive from
 * the gateway id, so every create is "create if absent" (ELBv2 returns the existing resource for
 * a create with the same name and settings) and a delete finds what a lost answer left behind.
 */
import { type AwsApi, listParams, type QueryParams } from "./client.ts";
import { fail, type SubnetInfo } from "./ec2.ts";
import { hasCode } from "./errors.ts";
import { list, text } from "./xml.ts";

export interface LoadBalancerData {
  lb_arn?: string;
  dns_name?: string;
  tg_arn?: string;
  https_listener_arn?: string;
  http_listener_arn?: string;
}

/** ELBv2 names: ≤ 32 characters, letters, digits and hyphens. */
export function loadBalancerNames(gatewayId: string): { lb: string; tg: string } {
  const base = `gp-${gatewayId.replace(/[^a-z0-9]/gi, "").slice(0, 16)}`;
  return { lb: `${base}-lb`, tg: `${base}-tg` };
}

/** TLS policy of the HTTPS listener: TLS 1.2+ (AWS's recommended policy; dstack uses 2016-08). */
const SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/**
 * Health check: the proxy answers every request (a 404 for a host it does not serve, which is what
 * an ALB's check with the target's IP as Host gets), so any HTTP answer means it is serving.
 */
const HEALTH_CHECK = { path: "/", matcher: "200-499" } as const;

/** One subnet per AZ, at least two AZs: what an ALB needs. */
export function loadBalancerSubnets(subnets: SubnetInfo[], vpcId: string, region: string): string[] {
  const byAz = new Map<string, string>();
  for (const s of subnets) if (!byAz.has(s.az)) byAz.set(s.az, s.id);
  if (byAz.size < 2) {
    const zones = [...byAz.keys()].join(", ") || "none";
    throw fail(
      "NotEnoughSubnets",
      `AWS Error: deploying a gateway with an ACM certificate requires at least two subnets in different AZs; VPC ${vpcId} of region ${region} has suitable subnets in: ${zones}`,
    );
  }
  return [...byAz.values()];
}

function tagParams(tags: Record<string, string>): QueryParams {
  const params: QueryParams = {};
  Object.entries(tags).forEach(([k, v], i) => {
    params[`Tags.member.${i + 1}.Key`] = k;
    params[`Tags.member.${i + 1}.Value`] = v;
  });
  return params;
}

export interface LoadBalancerPlan {
  gatewayId: string;
  vpcId: string;
  subnetIds: string[];
  securityGroupId: string;
  publicIp: boolean;
  certificateArn: string;
  tags: Record<string, string>;
}

/** Creates (or finds) each part in order, reporting progress so a restart can clean up. */
export async function ensureLoadBalancer(
  api: AwsApi,
  plan: LoadBalancerPlan,
  progress: (data: LoadBalancerData) => void,
): Promise<Required<Pick<LoadBalancerData, "lb_arn" | "dns_name" | "tg_arn">> & LoadBalancerData> {
  const names = loadBalancerNames(plan.gatewayId);
  const lbRes = await api.elb("CreateLoadBalancer", {
    Name: names.lb,
    Type: "application",
    Scheme: plan.publicIp ? "internet-facing" : "internal",
    IpAddressType: "ipv4",
    ...listParams("Subnets.member", plan.subnetIds),
    ...listParams("SecurityGroups.member", [plan.securityGroupId]),
    ...tagParams(plan.tags),
  });
  const lb = list(lbRes, "LoadBalancers", "member")[0];
  const data: LoadBalancerData = { lb_arn: text(lb, "LoadBalancerArn") ?? "", dns_name: text(lb, "DNSName") ?? "" };
  progress({ ...data });

  const tgRes = await api.elb("CreateTargetGroup", {
    Name: names.tg,
    Protocol: "HTTP",
    Port: 80,
    VpcId: plan.vpcId,
    TargetType: "instance",
    HealthCheckProtocol: "HTTP",
    HealthCheckPath: HEALTH_CHECK.path,
    "Matcher.HttpCode": HEALTH_CHECK.matcher,
    ...tagParams(plan.tags),
  });
  data.tg_arn = text(list(tgRes, "TargetGroups", "member")[0], "TargetGroupArn") ?? "";
  progress({ ...data });

  const existing = list(await api.elb("DescribeListeners", { LoadBalancerArn: data.lb_arn }), "Listeners", "member");
  const onPort = (port: number) =>
    text(
      existing.find((l) => text(l, "Port") === String(port)),
      "ListenerArn",
    );
  data.https_listener_arn =
    onPort(443) ??
    text(
      list(
        await api.elb("CreateListener", {
          LoadBalancerArn: data.lb_arn,
          Protocol: "HTTPS",
          Port: 443,
          SslPolicy: SSL_POLICY,
          "Certificates.member.1.CertificateArn": plan.certificateArn,
          "DefaultActions.member.1.Type": "forward",
          "DefaultActions.member.1.TargetGroupArn": data.tg_arn,
        }),
        "Listeners",
        "member",
      )[0],
      "ListenerArn",
    ) ??
    "";
  progress({ ...data });
  data.http_listener_arn =
    onPort(80) ??
    text(
      list(
        await api.elb("CreateListener", {
          LoadBalancerArn: data.lb_arn,
          Protocol: "HTTP",
          Port: 80,
          "DefaultActions.member.1.Type": "redirect",
          "DefaultActions.member.1.RedirectConfig.Protocol": "HTTPS",
          "DefaultActions.member.1.RedirectConfig.Port": "443",
          "DefaultActions.member.1.RedirectConfig.StatusCode": "HTTP_301",
        }),
        "Listeners",
        "member",
      )[0],
      "ListenerArn",
    ) ??
    "";
  progress({ ...data });
  return data as Required<Pick<LoadBalancerData, "lb_arn" | "dns_name" | "tg_arn">> & LoadBalancerData;
}

/** Listeners, load balancer, target group; each found by name when its ARN was never recorded. */
export async function deleteLoadBalancer(api: AwsApi, gatewayId: string, saved: LoadBalancerData): Promise<void> {
  const names = loadBalancerNames(gatewayId);
  let lbArn = saved.lb_arn || null;
  if (!lbArn) {
    try {
      const res = await api.elb("DescribeLoadBalancers", listParams("Names.member", [names.lb]));
      lbArn = text(list(res, "LoadBalancers", "member")[0], "LoadBalancerArn");
    } catch (e) {
      if (!hasCode(e, "LoadBalancerNotFound")) throw e;
    }
  }
  if (lbArn) {
    try {
      const res = await api.elb("DescribeListeners", { LoadBalancerArn: lbArn });
      for (const l of list(res, "Listeners", "member")) {
        try {
          await api.elb("DeleteListener", { ListenerArn: text(l, "ListenerArn") ?? "" });
        } catch (e) {
          if (!hasCode(e, "ListenerNotFound")) throw e;
        }
      }
    } catch (e) {
      if (!hasCode(e, "LoadBalancerNotFound")) throw e;
    }
    // Succeeds for a load balancer that is already gone.
    await api.elb("DeleteLoadBalancer", { LoadBalancerArn: lbArn });
  }
  let tgArn = saved.tg_arn || null;
  if (!tgArn) {
    try {
      const res = await api.elb("DescribeTargetGroups", listParams("Names.member", [names.tg]));
      tgArn = text(list(res, "TargetGroups", "member")[0], "TargetGroupArn");
    } catch (e) {
      if (!hasCode(e, "TargetGroupNotFound")) throw e;
    }
  }
  if (tgArn) {
    try {
      // ResourceInUse (the load balancer is still letting go of it) is retried by the caller.
      await api.elb("DeleteTargetGroup", { TargetGroupArn: tgArn });
    } catch (e) {
      if (!hasCode(e, "TargetGroupNotFound")) throw e;
    }
  }
}

export async function registerTarget(api: AwsApi, tgArn: string, instanceId: string): Promise<void> {
  await api.elb("RegisterTargets", {
    TargetGroupArn: tgArn,
    "Targets.member.1.Id": instanceId,
    "Targets.member.1.Port": 80,
  });
}

/** Silent when the target (or its group) is already gone. */
export async function deregisterTarget(api: AwsApi, tgArn: string, instanceId: string): Promise<void> {
  try {
    await api.elb("DeregisterTargets", {
      TargetGroupArn: tgArn,
      "Targets.member.1.Id": instanceId,
      "Targets.member.1.Port": 80,
    });
  } catch (e) {
    if (!hasCode(e, "InvalidTarget", "TargetGroupNotFound")) throw e;
  }
}
