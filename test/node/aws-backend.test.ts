/**
 * The aws backend's modules run in Node against the AWS fake: AMI choice, subnet classes, STS
 * session reuse, retries and timeouts, ClientToken conflicts, and load-balancer cleanup by name.
 * (The GatewayObject's use of them is in test/worker/aws.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsBackend } from "../../durable-objects/backends/aws/backend.ts";
import { AwsApi } from "../../durable-objects/backends/aws/client.ts";
import {
  architectureOf,
  describeSubnets,
  latestUbuntuAmi,
  pickSubnets,
  securityGroupName,
} from "../../durable-objects/backends/aws/ec2.ts";
import {
  deleteLoadBalancer,
  deregisterTarget,
  ensureLoadBalancer,
  loadBalancerNames,
} from "../../durable-objects/backends/aws/elb.ts";
import { SGLANG_ROUTER_PACKAGE } from "../../durable-objects/backends/clouds/cloud-init.ts";
import { BackendError } from "../../durable-objects/backends/types.ts";
import { AwsCredentials } from "../../schema/backend-credentials.ts";
import { formatIssue, parseOrThrow, ValidationError } from "../../schema/issues.ts";
import { type FakeAws, startFakeAws } from "../fakes/aws/server.ts";

const KEY = { access_key_id: "AKIAFAKEBACKEND00001", secret_access_key: "backend-secret-0123456789" };
const ROLE = "arn:aws:iam::123456789012:role/gateplane-backend";
const CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/99999999-2222-3333-4444-555555555555";

let fake: FakeAws;
const api = (region = "eu-west-1", extra: Partial<ConstructorParameters<typeof AwsApi>[0]> = {}) =>
  new AwsApi({
    access: { ...KEY, endpoint_url: fake.url },
    region,
    timeoutMs: 5_000,
    retries: 3,
    retryBaseMs: 10,
    ...extra,
  });

async function failure(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BackendError) return e;
    throw e;
  }
  throw new Error("expected a BackendError");
}

beforeAll(async () => {
  fake = await startFakeAws({ keys: { [KEY.access_key_id]: KEY.secret_access_key }, roles: [ROLE] });
  fake.state.certificates.add(CERT);
});
afterAll(async () => {
  await fake?.close();
});

describe("credentials", () => {
  const issues = (input: Record<string, unknown>) => {
    try {
      parseOrThrow(AwsCredentials, { ...KEY, ...input });
      return [];
    } catch (e) {
      if (e instanceof ValidationError) return e.issues.map(formatIssue);
      throw e;
    }
  };
  it("takes an http(s) endpoint_url and a bounded timeout_seconds, naming the field otherwise", () => {
    expect(issues({ endpoint_url: "https://aws-proxy.example.com", timeout_seconds: 2.5 })).toEqual([]);
    expect(issues({ endpoint_url: "ftp://aws-proxy.example.com" })).toEqual(["endpoint_url: expected an http(s) URL"]);
    expect(issues({ timeout_seconds: 0 })).toEqual(["timeout_seconds: must be at least 0.1"]);
    expect(issues({ timeout_seconds: "20" })).toEqual(["timeout_seconds: expected a number of seconds"]);
  });
});

describe("images and subnets", () => {
  it("picks Canonical's newest 24.04 image for the instance's architecture, else 22.04", async () => {
    expect(architectureOf("t3.micro")).toBe("amd64");
    expect(architectureOf("t4g.small")).toBe("arm64");
    expect(architectureOf("m7gd.large")).toBe("arm64");
    expect(architectureOf("g5.xlarge")).toBe("amd64");
    const a = api();
    fake.state.region("eu-west-1");
    const byName = (pattern: string) =>
      fake.state.images
        .filter((i) => i.region === "eu-west-1" && i.owner === "099720109477" && i.name.includes(pattern))
        .sort((x, y) => y.created.localeCompare(x.created))[0]!.id;
    expect(await latestUbuntuAmi(a, "amd64")).toBe(byName("noble-24.04-amd64"));
    expect(await latestUbuntuAmi(a, "arm64")).toBe(byName("noble-24.04-arm64"));

    fake.state.region("ap-south-1");
    for (let i = fake.state.images.length - 1; i >= 0; i--) {
      const img = fake.state.images[i]!;
      if (img.region === "ap-south-1" && img.name.includes("noble")) fake.state.images.splice(i, 1);
    }
    const jammy = fake.state.images.find((i) => i.region === "ap-south-1" && i.name.includes("jammy"))!;
    expect(await latestUbuntuAmi(api("ap-south-1"), "amd64")).toBe(jammy.id);
    const none = await failure(latestUbuntuAmi(api("ap-south-1"), "arm64"));
    expect(none.message).toBe("AWS Error: no Canonical Ubuntu 24.04 or 22.04 (arm64) image found in region ap-south-1");
  });

  it("classes subnets by their route table, the main table standing in for unassociated ones", async () => {
    const { vpc, subnets } = fake.state.addVpc("eu-west-1", false, [
      { az: "a", public: false },
      { az: "b", public: false },
      { az: "c", public: true },
    ]);
    // The main table now routes to an internet gateway; subnet b gets its own private table.
    const main = fake.state.routeTables.find((t) => t.vpcId === vpc.id && t.main)!;
    main.routes.push({ destination: "0.0.0.0/0", gatewayId: "igw-0123456789abcdef0" });
    fake.state.routeTables.push({
      id: "rtb-0000000000000000b",
      region: "eu-west-1",
      vpcId: vpc.id,
      main: false,
      subnetIds: [subnets[1]!.id],
      routes: [{ destination: "0.0.0.0/0", gatewayId: "nat-0123456789abcdef0" }],
    });
    const classes = await describeSubnets(api(), vpc.id);
    expect(classes.map((s) => [s.id, s.public])).toEqual([
      [subnets[0]!.id, true],
      [subnets[1]!.id, false],
      [subnets[2]!.id, true],
    ]);
    expect(pickSubnets(classes, false, vpc.id, "eu-west-1").map((s) => s.id)).toEqual([subnets[1]!.id]);
    const onlyPublic = classes.filter((s) => s.public);
    expect(() => pickSubnets(onlyPublic, false, vpc.id, "eu-west-1")).toThrow(
      `AWS Error: no private subnet in VPC ${vpc.id} of region eu-west-1: a private gateway (public_ip: false) needs a subnet without a route to an internet gateway, e.g. behind a NAT gateway`,
    );
  });
});

describe("calls", () => {
  it("retries throttling within a call and gives up with AWS's words after the last attempt", async () => {
    const seen = () => fake.calls.filter((c) => c.action === "DescribeVpcs").length;
    const start = seen();
    fake.faults.push({ kind: "throttle", action: "DescribeVpcs", count: 2 });
    await api().ec2("DescribeVpcs");
    expect(seen() - start).toBe(3);

    fake.faults.push({ kind: "throttle", action: "DescribeVpcs", count: 10 });
    const err = await failure(api().ec2("DescribeVpcs"));
    expect(seen() - start).toBe(3 + 4);
    expect(err).toMatchObject({ code: "RequestLimitExceeded", retryable: true });
    expect(err.message).toBe("AWS Error: RequestLimitExceeded: Request limit exceeded.");
    fake.faults.length = 0;

    fake.faults.push({ kind: "error500", action: "DescribeLoadBalancers", count: 1 });
    const five = await failure(api("eu-west-1", { retries: 0 }).elb("DescribeLoadBalancers"));
    expect(five).toMatchObject({ code: "InternalFailure", retryable: true });
  });

  it("gives up on a call that hangs past the timeout, as a retryable error", async () => {
    fake.faults.push({ kind: "hang", action: "DescribeSubnets", count: 1 });
    const err = await failure(api("eu-west-1", { retries: 0, timeoutMs: 300 }).ec2("DescribeSubnets"));
    expect(err).toMatchObject({ code: "Timeout", retryable: true });
    expect(err.message).toContain("AWS Error: Timeout: DescribeSubnets at 127.0.0.1:");
  });

  it("assumes the role once and reuses the session; a refused role is a clear, final error", async () => {
    const assumed = () => fake.calls.filter((c) => c.action === "AssumeRole" && c.status === 200).length;
    const before = assumed();
    const a = new AwsApi({
      access: { ...KEY, role_arn: ROLE, endpoint_url: fake.url },
      region: "eu-west-1",
      timeoutMs: 5_000,
      retries: 0,
      retryBaseMs: 10,
    });
    await a.ec2("DescribeVpcs");
    await a.ec2("DescribeSubnets");
    await api().ec2("DescribeVpcs");
    expect(assumed() - before).toBe(1);

    const other = "arn:aws:iam::123456789012:role/not-allowed";
    const denied = await failure(
      new AwsApi({
        access: { ...KEY, role_arn: other, endpoint_url: fake.url },
        region: "eu-west-1",
        timeoutMs: 5_000,
        retries: 3,
        retryBaseMs: 10,
      }).ec2("DescribeVpcs"),
    );
    expect(denied).toMatchObject({ code: "AccessDenied", retryable: false });
    expect(denied.message).toBe(
      `AWS Error: AccessDenied: User: arn:aws:iam::123456789012:user/${KEY.access_key_id} is not authorized to perform: sts:AssumeRole on resource: ${other}`,
    );
  });
});

describe("the backend", () => {
  const bootstrap = {
    control_plane_url: "https://gateplane.example.com",
    object_id: "a".repeat(64),
    gateway_id: "0b0e5f2c-9a47-4d0e-9c8a-2b1f9d3e4a51",
    gateway_name: "gw",
    project_name: "main",
    replica_num: 0,
    bootstrap_secret: "s".repeat(43),
  };
  const backend = () =>
    awsBackend({
      credentials: { ...KEY, endpoint_url: fake.url, timeout_seconds: 5 },
      agentPackageUrl: "https://downloads.example.com/gateplane-0.1.0.tgz",
      retryBaseMs: 10,
    });
  const spec = (extra: Record<string, unknown> = {}) => ({
    name: "gp-main-gw-0",
    clientToken: "6f1c1b4e-0d1a-4f7e-9b7e-5b1d2c3a4e5f",
    region: "eu-west-1",
    instanceType: null,
    publicIp: true,
    tags: { owner: "gateplane", gateplane_project: "main" },
    bootstrap,
    router: null,
    ...extra,
  });

  it("reuses the project's security group, and refuses a changed request under the same ClientToken", async () => {
    const b = backend();
    const network = await b.ensureNetwork({
      projectName: "main",
      gatewayName: "gw",
      region: "eu-west-1",
      publicIp: true,
      tags: {},
    });
    await b.ensureNetwork({ projectName: "main", gatewayName: "gw2", region: "eu-west-1", publicIp: true, tags: {} });
    expect(fake.state.securityGroups.filter((g) => g.name === securityGroupName("main"))).toHaveLength(1);
    const first = await b.createInstance(spec(), network);
    expect(first).toMatchObject({ state: "pending", region: "eu-west-1" });
    expect(first.hostname).toMatch(/^54\.200\./);
    expect((await b.createInstance(spec(), network)).instanceId).toBe(first.instanceId);
    const changed = await failure(b.createInstance(spec({ instanceType: "t3.large" }), network));
    expect(changed).toMatchObject({ code: "IdempotentParameterMismatch", retryable: false });
    expect((await b.findInstance(spec()))?.instanceId).toBe(first.instanceId);

    await b.terminateInstance(first.instanceId, "eu-west-1");
    await b.terminateInstance("i-0123456789abcdef0", "eu-west-1");
    expect(await b.describeInstance("i-0123456789abcdef0", "eu-west-1")).toBeNull();
    expect((await b.describeInstance(first.instanceId, "eu-west-1"))?.state).toBe("terminated");
  });

  it("installs the SGLang Model Gateway in user-data only for gateways whose router is sglang", async () => {
    const b = backend();
    const network = await b.ensureNetwork({
      projectName: "main",
      gatewayName: "gw",
      region: "eu-west-1",
      publicIp: true,
      tags: {},
    });
    const router = { type: "sglang" as const, policy: "cache_aware" as const };
    await b.createInstance(spec({ clientToken: "with-router", router }), network);
    await b.createInstance(spec({ clientToken: "without-router" }), network);
    const userData = (token: string) => fake.state.instances.find((i) => i.clientToken === token)?.userData ?? "";
    // The install script carries the router's install steps either way, switched by this variable.
    expect(userData("with-router")).toContain("SGLANG_ROUTER=1");
    expect(userData("with-router")).toContain(SGLANG_ROUTER_PACKAGE);
    expect(userData("without-router")).toContain("SGLANG_ROUTER=0");
  });

  it("names the missing agent package instead of launching a host that cannot boot", async () => {
    const b = awsBackend({ credentials: { ...KEY, endpoint_url: fake.url }, agentPackageUrl: undefined });
    const network = await b.ensureNetwork({
      projectName: "main",
      gatewayName: "gw",
      region: "eu-west-1",
      publicIp: true,
      tags: {},
    });
    const err = await failure(b.createInstance(spec({ clientToken: "no-package" }), network));
    expect(err.message).toContain("AGENT_PACKAGE_URL is not set");
    expect(fake.state.instances.some((i) => i.clientToken === "no-package")).toBe(false);
  });

  it("deletes a load balancer whose ARNs were never recorded, by its names", async () => {
    const a = api();
    const b = backend();
    const gatewayId = "7d3c5e1a-2b4f-4c6d-8e9f-0a1b2c3d4e5f";
    const names = loadBalancerNames(gatewayId);
    const vpc = fake.state.vpcs.find((v) => v.region === "eu-west-1" && v.isDefault)!;
    const subnets = pickSubnets(await describeSubnets(a, vpc.id), true, vpc.id, "eu-west-1");
    const sg = fake.state.securityGroups.find((g) => g.name === securityGroupName("main"))!;
    const steps: unknown[] = [];
    const made = await ensureLoadBalancer(
      a,
      {
        gatewayId,
        vpcId: vpc.id,
        subnetIds: [...new Map(subnets.map((s) => [s.az, s.id])).values()],
        securityGroupId: sg.id,
        publicIp: true,
        certificateArn: CERT,
        tags: { owner: "gateplane" },
      },
      (d) => steps.push(d),
    );
    expect(steps).toHaveLength(4);
    expect(made.dns_name).toContain(names.lb);
    await deregisterTarget(a, made.tg_arn, "i-0123456789abcdef0");
    await b.deleteLoadBalancer?.(
      {
        gatewayId,
        projectName: "main",
        gatewayName: "gw",
        region: "eu-west-1",
        publicIp: true,
        certificateArn: CERT,
        tags: {},
      },
      null,
    );
    expect(fake.state.loadBalancers.filter((l) => l.name === names.lb)).toEqual([]);
    expect(fake.state.targetGroups.filter((t) => t.name === names.tg)).toEqual([]);
    expect(fake.state.listeners.filter((l) => l.lbArn === made.lb_arn)).toEqual([]);
    // Deleting again is a no-op.
    await deleteLoadBalancer(a, gatewayId, {});
  });
});
