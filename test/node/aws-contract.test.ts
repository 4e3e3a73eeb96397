/**
 * Contract tests of the AWS fake: the official SDK clients (EC2, ELBv2, STS) pointed at it parse
 * every action Gateplane calls, and its SigV4 check rejects what AWS rejects.
 */
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  type EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DeleteListenerCommand,
  DeleteLoadBalancerCommand,
  DeleteTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeAws, startFakeAws } from "../fakes/aws/server.ts";

const KEY = { accessKeyId: "AKIAFAKECONTRACT0001", secretAccessKey: "contract-secret-0123456789" };
const ROLE = "arn:aws:iam::123456789012:role/gateplane-contract";
const CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444455556666";
const region = "eu-west-1";

let fake: FakeAws;
let ec2: EC2Client;
let elb: ElasticLoadBalancingV2Client;

const client = <T>(C: new (c: object) => T, credentials = KEY) =>
  new C({ region, endpoint: fake.url, credentials, maxAttempts: 1 });

async function rejected(p: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as EC2ServiceException;
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  fake = await startFakeAws({ keys: { [KEY.accessKeyId]: KEY.secretAccessKey }, roles: [ROLE], describesToRunning: 1 });
  fake.state.certificates.add(CERT);
  ec2 = client(EC2Client);
  elb = client(ElasticLoadBalancingV2Client);
});

afterAll(async () => {
  ec2?.destroy();
  elb?.destroy();
  await fake?.close();
});

describe("EC2 through @aws-sdk/client-ec2", () => {
  it("parses images, VPCs, subnets and route tables", async () => {
    const images = await ec2.send(
      new DescribeImagesCommand({
        Owners: ["099720109477"],
        Filters: [{ Name: "name", Values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"] }],
      }),
    );
    expect(images.Images?.length).toBe(2);
    expect(images.Images?.every((i) => i.OwnerId === "099720109477" && i.ImageId?.startsWith("ami-"))).toBe(true);
    expect(images.Images?.map((i) => i.CreationDate).sort()).toEqual([
      "2025-01-02T00:00:00.000Z",
      "2026-03-02T00:00:00.000Z",
    ]);

    const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }));
    expect(vpcs.Vpcs).toHaveLength(1);
    expect(vpcs.Vpcs?.[0]?.IsDefault).toBe(true);
    const vpcId = vpcs.Vpcs![0]!.VpcId!;
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }));
    expect(subnets.Subnets?.map((s) => s.AvailabilityZone).sort()).toEqual([
      "eu-west-1a",
      "eu-west-1a",
      "eu-west-1b",
      "eu-west-1b",
    ]);
    const tables = await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }));
    const main = tables.RouteTables?.find((t) => t.Associations?.some((a) => a.Main));
    expect(main?.Routes?.some((r) => r.GatewayId?.startsWith("igw-"))).toBe(false);
    const pub = tables.RouteTables?.find((t) => t.Associations?.some((a) => a.SubnetId));
    expect(pub?.Routes?.find((r) => r.DestinationCidrBlock === "0.0.0.0/0")?.GatewayId).toMatch(/^igw-/);
    expect(pub?.Associations).toHaveLength(2);

    const missing = await rejected(ec2.send(new DescribeVpcsCommand({ VpcIds: ["vpc-0000000000000dead"] })));
    expect(missing.name).toBe("InvalidVpcID.NotFound");
  });

  it("creates a security group once and opens each rule once", async () => {
    const vpcId = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs![0]!.VpcId!;
    const created = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: "gateplane-gateway-contract",
        Description: "test",
        VpcId: vpcId,
        TagSpecifications: [{ ResourceType: "security-group", Tags: [{ Key: "owner", Value: "gateplane" }] }],
      }),
    );
    expect(created.GroupId).toMatch(/^sg-/);
    const dup = await rejected(
      ec2.send(
        new CreateSecurityGroupCommand({ GroupName: "gateplane-gateway-contract", Description: "x", VpcId: vpcId }),
      ),
    );
    expect(dup.name).toBe("InvalidGroup.Duplicate");
    const rule = {
      GroupId: created.GroupId,
      IpPermissions: [80, 443].map((p) => ({
        IpProtocol: "tcp",
        FromPort: p,
        ToPort: p,
        IpRanges: [{ CidrIp: "0.0.0.0/0" }],
      })),
    };
    await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    expect((await rejected(ec2.send(new AuthorizeSecurityGroupIngressCommand(rule)))).name).toBe(
      "InvalidPermission.Duplicate",
    );
    const found = await ec2.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-name", Values: ["gateplane-gateway-contract"] }] }),
    );
    expect(found.SecurityGroups?.[0]?.IpPermissions?.map((p) => [p.FromPort, p.IpRanges?.[0]?.CidrIp])).toEqual([
      [80, "0.0.0.0/0"],
      [443, "0.0.0.0/0"],
    ]);
    expect(found.SecurityGroups?.[0]?.Tags).toEqual([{ Key: "owner", Value: "gateplane" }]);
  });

  it("runs an instance idempotently by ClientToken, describes it to running, terminates it", async () => {
    const vpcId = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs![0]!.VpcId!;
    const subnetId = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] })))
      .Subnets![0]!.SubnetId!;
    const sg = (
      await ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [{ Name: "group-name", Values: ["gateplane-gateway-contract"] }],
        }),
      )
    ).SecurityGroups![0]!.GroupId!;
    const imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ["099720109477"] }))).Images![0]!.ImageId!;
    const run = (userData: string) =>
      ec2.send(
        new RunInstancesCommand({
          ClientToken: "contract-token-1",
          ImageId: imageId,
          InstanceType: "t3.micro",
          MinCount: 1,
          MaxCount: 1,
          UserData: Buffer.from(userData).toString("base64"),
          NetworkInterfaces: [
            {
              DeviceIndex: 0,
              SubnetId: subnetId,
              AssociatePublicIpAddress: true,
              Groups: [sg],
              DeleteOnTermination: true,
            },
          ],
          TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Name", Value: "gp-contract" }] }],
        }),
      );
    const first = await run("#cloud-config\n");
    const again = await run("#cloud-config\n");
    const instance = first.Instances![0]!;
    expect(instance.State?.Name).toBe("pending");
    expect(again.Instances?.[0]?.InstanceId).toBe(instance.InstanceId);
    expect((await rejected(run("#cloud-config\nchanged: true\n"))).name).toBe("IdempotentParameterMismatch");
    expect(fake.state.instances.filter((i) => i.clientToken === "contract-token-1")).toHaveLength(1);

    const byToken = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "client-token", Values: ["contract-token-1"] }] }),
    );
    const seen = byToken.Reservations?.[0]?.Instances?.[0];
    expect(seen?.InstanceId).toBe(instance.InstanceId);
    expect(seen?.Tags).toEqual([{ Key: "Name", Value: "gp-contract" }]);
    expect(seen?.PublicIpAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const running = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.InstanceId!] }));
    expect(running.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe("running");

    const terminated = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.InstanceId!] }));
    expect(terminated.TerminatingInstances?.[0]).toMatchObject({
      InstanceId: instance.InstanceId,
      CurrentState: { Code: 32, Name: "shutting-down" },
      PreviousState: { Code: 16, Name: "running" },
    });
    const gone = await rejected(ec2.send(new TerminateInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })));
    expect(gone.name).toBe("InvalidInstanceID.NotFound");
  });
});

describe("ELBv2 through @aws-sdk/client-elastic-load-balancing-v2", () => {
  it("creates, finds and deletes an ALB with a target group, HTTPS and redirect listeners", async () => {
    const vpcId = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs![0]!.VpcId!;
    const subnets = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] })))
      .Subnets!;
    const twoAzs = [
      subnets.find((s) => s.AvailabilityZone === "eu-west-1a")!.SubnetId!,
      subnets.find((s) => s.AvailabilityZone === "eu-west-1b")!.SubnetId!,
    ];
    const oneAz = await rejected(
      elb.send(new CreateLoadBalancerCommand({ Name: "gp-one-az", Subnets: [twoAzs[0]!], Type: "application" })),
    );
    expect(oneAz.name).toBe("InvalidConfigurationRequestException");

    const create = () =>
      elb.send(
        new CreateLoadBalancerCommand({
          Name: "gp-contract-lb",
          Subnets: twoAzs,
          Scheme: "internet-facing",
          Type: "application",
          IpAddressType: "ipv4",
          Tags: [{ Key: "owner", Value: "gateplane" }],
        }),
      );
    const lb = (await create()).LoadBalancers![0]!;
    expect(lb.DNSName).toMatch(/^gp-contract-lb-\d+\.eu-west-1\.elb\.amazonaws\.com$/);
    expect(lb.AvailabilityZones?.map((z) => z.ZoneName)).toEqual(["eu-west-1a", "eu-west-1b"]);
    expect((await create()).LoadBalancers?.[0]?.LoadBalancerArn).toBe(lb.LoadBalancerArn);

    const tg = (
      await elb.send(
        new CreateTargetGroupCommand({
          Name: "gp-contract-tg",
          Protocol: "HTTP",
          Port: 80,
          VpcId: vpcId,
          TargetType: "instance",
          HealthCheckPath: "/",
          Matcher: { HttpCode: "200-499" },
        }),
      )
    ).TargetGroups![0]!;
    expect(tg).toMatchObject({ Port: 80, Protocol: "HTTP", HealthCheckPath: "/", Matcher: { HttpCode: "200-499" } });

    const noCert = await rejected(
      elb.send(
        new CreateListenerCommand({
          LoadBalancerArn: lb.LoadBalancerArn,
          Protocol: "HTTPS",
          Port: 443,
          Certificates: [{ CertificateArn: CERT.replace("0f0f", "dead") }],
          DefaultActions: [{ Type: "forward", TargetGroupArn: tg.TargetGroupArn }],
        }),
      ),
    );
    expect(noCert.name).toBe("CertificateNotFoundException");
    const https = (
      await elb.send(
        new CreateListenerCommand({
          LoadBalancerArn: lb.LoadBalancerArn,
          Protocol: "HTTPS",
          Port: 443,
          SslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
          Certificates: [{ CertificateArn: CERT }],
          DefaultActions: [{ Type: "forward", TargetGroupArn: tg.TargetGroupArn }],
        }),
      )
    ).Listeners![0]!;
    expect(https.Certificates?.[0]?.CertificateArn).toBe(CERT);
    const http = (
      await elb.send(
        new CreateListenerCommand({
          LoadBalancerArn: lb.LoadBalancerArn,
          Protocol: "HTTP",
          Port: 80,
          DefaultActions: [
            { Type: "redirect", RedirectConfig: { Protocol: "HTTPS", Port: "443", StatusCode: "HTTP_301" } },
          ],
        }),
      )
    ).Listeners![0]!;
    const listeners = await elb.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn }));
    expect(listeners.Listeners?.map((l) => [l.Port, l.DefaultActions?.[0]?.Type])).toEqual([
      [443, "forward"],
      [80, "redirect"],
    ]);
    expect(listeners.Listeners?.[1]?.DefaultActions?.[0]?.RedirectConfig).toMatchObject({
      Protocol: "HTTPS",
      Port: "443",
      StatusCode: "HTTP_301",
    });

    const sg = (
      await ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [{ Name: "group-name", Values: ["gateplane-gateway-contract"] }],
        }),
      )
    ).SecurityGroups![0]!.GroupId!;
    const imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ["099720109477"] }))).Images![0]!.ImageId!;
    const target = (
      await ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: "t3.micro",
          MinCount: 1,
          MaxCount: 1,
          NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: twoAzs[0], Groups: [sg] }],
        }),
      )
    ).Instances![0]!.InstanceId!;
    const register = () =>
      elb.send(new RegisterTargetsCommand({ TargetGroupArn: tg.TargetGroupArn, Targets: [{ Id: target, Port: 80 }] }));
    expect((await rejected(register())).name).toBe("InvalidTargetException");
    await ec2.send(new DescribeInstancesCommand({ InstanceIds: [target] }));
    await register();
    expect(fake.state.targetGroups.find((t) => t.arn === tg.TargetGroupArn)?.targets).toEqual([
      { id: target, port: 80 },
    ]);
    await elb.send(
      new DeregisterTargetsCommand({ TargetGroupArn: tg.TargetGroupArn, Targets: [{ Id: target, Port: 80 }] }),
    );
    expect(fake.state.targetGroups.find((t) => t.arn === tg.TargetGroupArn)?.targets).toEqual([]);
    const byName = await elb.send(new DescribeLoadBalancersCommand({ Names: ["gp-contract-lb"] }));
    expect(byName.LoadBalancers?.[0]?.LoadBalancerArn).toBe(lb.LoadBalancerArn);
    const tgByName = await elb.send(new DescribeTargetGroupsCommand({ Names: ["gp-contract-tg"] }));
    expect(tgByName.TargetGroups?.[0]?.LoadBalancerArns).toEqual([lb.LoadBalancerArn]);

    expect((await rejected(elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: tg.TargetGroupArn })))).name).toBe(
      "ResourceInUseException",
    );
    await elb.send(new DeleteListenerCommand({ ListenerArn: https.ListenerArn }));
    await elb.send(new DeleteListenerCommand({ ListenerArn: http.ListenerArn }));
    await elb.send(new DeleteLoadBalancerCommand({ LoadBalancerArn: lb.LoadBalancerArn }));
    await elb.send(new DeleteTargetGroupCommand({ TargetGroupArn: tg.TargetGroupArn }));
    expect((await rejected(elb.send(new DescribeLoadBalancersCommand({ Names: ["gp-contract-lb"] })))).name).toBe(
      "LoadBalancerNotFoundException",
    );
    expect((await rejected(elb.send(new DescribeTargetGroupsCommand({ Names: ["gp-contract-tg"] })))).name).toBe(
      "TargetGroupNotFoundException",
    );
  });
});

describe("STS and signatures", () => {
  it("assumes an allowed role; its temporary keys sign EC2 calls", async () => {
    const sts = client(STSClient);
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: "contract" }));
    expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(out.Credentials?.Expiration).toBeInstanceOf(Date);
    expect(out.AssumedRoleUser?.Arn).toBe("arn:aws:sts::123456789012:assumed-role/gateplane-contract/contract");
    const denied = await rejected(
      sts.send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/other", RoleSessionName: "x" })),
    );
    expect(denied.name).toBe("AccessDenied");
    sts.destroy();

    const temp = client(EC2Client, {
      accessKeyId: out.Credentials!.AccessKeyId!,
      secretAccessKey: out.Credentials!.SecretAccessKey!,
      sessionToken: out.Credentials!.SessionToken!,
    } as typeof KEY);
    expect((await temp.send(new DescribeVpcsCommand({}))).Vpcs?.length).toBeGreaterThan(0);
    const noToken = client(EC2Client, {
      accessKeyId: out.Credentials!.AccessKeyId!,
      secretAccessKey: out.Credentials!.SecretAccessKey!,
    });
    expect((await rejected(noToken.send(new DescribeVpcsCommand({})))).name).toBe("AuthFailure");
    temp.destroy();
    noToken.destroy();
  });

  it("rejects a wrong secret, an unknown key and a skewed clock with AWS's codes", async () => {
    const wrong = client(EC2Client, { ...KEY, secretAccessKey: "not-the-secret" });
    const bad = await rejected(wrong.send(new DescribeVpcsCommand({})));
    expect(bad).toMatchObject({ name: "AuthFailure", status: 401 });
    expect(bad.message).toBe("AWS was not able to validate the provided access credentials");
    const unknown = client(ElasticLoadBalancingV2Client, { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" });
    expect((await rejected(unknown.send(new DescribeLoadBalancersCommand({})))).name).toBe("InvalidClientTokenId");
    const wrongElb = client(ElasticLoadBalancingV2Client, { ...KEY, secretAccessKey: "not-the-secret" });
    expect((await rejected(wrongElb.send(new DescribeLoadBalancersCommand({})))).name).toBe("SignatureDoesNotMatch");
    const skewed = new EC2Client({
      region,
      endpoint: fake.url,
      credentials: KEY,
      maxAttempts: 1,
      systemClockOffset: -3_600_000,
    });
    expect((await rejected(skewed.send(new DescribeVpcsCommand({})))).name).toBe("RequestExpired");
    for (const c of [wrong, unknown, wrongElb, skewed]) c.destroy();
  });

  it("injects throttling and 500s in each protocol's error shape", async () => {
    fake.faults.push({ kind: "throttle", count: 1 }, { kind: "error500", count: 1 });
    const throttled = await rejected(ec2.send(new DescribeVpcsCommand({})));
    expect(throttled).toMatchObject({ name: "RequestLimitExceeded", status: 503 });
    const failed = await rejected(elb.send(new DescribeLoadBalancersCommand({})));
    expect(failed).toMatchObject({ name: "InternalFailure", status: 500 });
    expect((await ec2.send(new DescribeVpcsCommand({}))).Vpcs?.length).toBeGreaterThan(0);
  });
});
