/**
 * The aws backend through the GatewayObject, against the AWS fake (test/fakes/aws): provisioning,
 * private and ACM gateways, faults (throttling, 500s, timeouts, lost answers, a doubled alarm) and
 * bad credentials. Each test asserts on the fake's state: exactly one instance per replica, and
 * nothing left once the gateway is deleted.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadBalancerNames } from "../../durable-objects/backends/aws/elb.ts";
import { api, applyConfig, gatewayStub, getGateway, newProject, waitFor } from "./helpers.ts";

const KEY = { access_key_id: "AKIAGATEPLANETEST001", secret_access_key: "gateplane-test-secret-0123" };
const ROLE = "arn:aws:iam::123456789012:role/gateplane-test";
const REGION = "eu-west-1";
const CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555";
const FAKE = env.AWS_FAKE_URL;

interface FakeInstance {
  id: string;
  state: string;
  clientToken: string;
  instanceType: string;
  imageId: string;
  subnetId: string;
  publicIp: string | null;
  privateIp: string;
  groupIds: string[];
  tags: { key: string; value: string }[];
  volumeTags: { key: string; value: string }[];
  userData: string;
  metadataHttpTokens: string;
}
interface FakeState {
  instances: FakeInstance[];
  securityGroups: { id: string; name: string; ingress: { from: number; cidr: string }[] }[];
  loadBalancers: { arn: string; name: string; dnsName: string; scheme: string; subnetIds: string[] }[];
  targetGroups: { arn: string; name: string; targets: { id: string; port: number }[]; healthCheckPath: string }[];
  listeners: {
    lbArn: string;
    port: number;
    protocol: string;
    certificateArn: string | null;
    action: { type: string };
  }[];
  subnets: { id: string; az: string; public: boolean }[];
  images: { id: string; region: string; owner: string; name: string; created: string }[];
  calls: { service: string; action: string; status: number | string }[];
}

async function fake<T = FakeState>(path = "state", body?: unknown): Promise<T> {
  const res = await fetch(`${FAKE}/__fake/${path}`, {
    method: body === undefined ? "GET" : "POST",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as T;
}
const clearFaults = () => fetch(`${FAKE}/__fake/faults`, { method: "DELETE" });
const injectFaults = (faults: { kind: string; action?: string; count: number }[]) => fake("faults", { faults });

const lbNames = loadBalancerNames;
const tag = (i: FakeInstance, key: string) => i.tags.find((t) => t.key === key)?.value;
async function instancesOf(project: string): Promise<FakeInstance[]> {
  return (await fake()).instances.filter((i) => tag(i, "gateplane_project") === project);
}

async function awsProject(credentials: Record<string, unknown> = {}): Promise<string> {
  const project = await newProject();
  const put = await api("PUT", `/api/v1/projects/${project}/backends/aws`, {
    ...KEY,
    endpoint_url: FAKE,
    timeout_seconds: 2,
    ...credentials,
  });
  expect(put.status).toBe(200);
  return project;
}

const awsConfig = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "gateway",
  name,
  backend: "aws",
  region: REGION,
  domain: "gw.example.com",
  certificate: null,
  ...extra,
});

/** The agent's side: read the bootstrap out of the instance's cloud-init and register with it. */
async function registerFromUserData(instance: FakeInstance) {
  const doc = parse(instance.userData.replace(/^#cloud-config\n/, "")) as {
    write_files: { path: string; content: string }[];
  };
  const bootstrap = JSON.parse(doc.write_files.find((f) => f.path.endsWith("bootstrap.json"))!.content);
  const { object_id, gateway_id, replica_num, bootstrap_secret } = bootstrap;
  const res = await api(
    "POST",
    "/api/v1/agent/register",
    { object_id, gateway_id, replica_num, bootstrap_secret, version: "test" },
    null,
  );
  expect(res.status).toBe(200);
  return bootstrap;
}

async function waitStatus(project: string, name: string, status: string, timeoutMs = 20_000) {
  return waitFor(
    `gateway ${name} ${status}`,
    async () => {
      const g = (await getGateway(project, name)).body;
      return g.status === status ? g : null;
    },
    timeoutMs,
  );
}

async function deleteAndWait(project: string, name: string) {
  const del = await api("POST", `/api/v1/projects/${project}/gateways/delete`, { names: [name] });
  expect(del.status).toBeLessThan(300);
  await waitFor("gateway gone", async () => (await getGateway(project, name)).status === 404, 30_000);
}

describe("aws backend", { timeout: 60_000 }, () => {
  it("provisions a public gateway, runs once its agent registers, and terminates it on delete", async () => {
    await clearFaults();
    const project = await awsProject();
    const created = await applyConfig(
      project,
      awsConfig("gw-pub", { instance_type: "t3.small", tags: { team: "ml" } }),
    );
    expect(created.status).toBe(201);
    const [instance] = await waitFor("instance", async () => {
      const found = await instancesOf(project);
      return found.length > 0 ? found : null;
    });
    const state = await fake();
    expect(instance).toMatchObject({ instanceType: "t3.small", metadataHttpTokens: "required" });
    expect(tag(instance!, "Name")).toBe(`gp-${project}-gw-pub-0`);
    expect(tag(instance!, "owner")).toBe("gateplane");
    expect(tag(instance!, "gateplane_gateway")).toBe("gw-pub");
    expect(tag(instance!, "team")).toBe("ml");
    expect(instance!.volumeTags).toEqual(instance!.tags);
    // Newest Canonical noble amd64 image, not the newer look-alike from another owner.
    const newest = state.images
      .filter((i) => i.region === REGION && i.owner === "099720109477" && i.name.includes("noble-24.04-amd64"))
      .sort((a, b) => b.created.localeCompare(a.created))[0]!;
    expect(instance!.imageId).toBe(newest.id);
    expect(state.subnets.find((s) => s.id === instance!.subnetId)?.public).toBe(true);
    const sg = state.securityGroups.find((g) => g.name === `gateplane-gateway-${project}`)!;
    expect(instance!.groupIds).toEqual([sg.id]);
    expect(sg.ingress.map((p) => [p.from, p.cidr]).sort()).toEqual([
      [443, "0.0.0.0/0"],
      [80, "0.0.0.0/0"],
    ]);
    expect(instance!.userData).toMatch(/^#cloud-config\n/);
    expect(instance!.userData).toContain("https://downloads.gateplane.test/gateplane-0.1.0.tgz");

    const bootstrap = await registerFromUserData(instance!);
    expect(bootstrap).toMatchObject({ gateway_name: "gw-pub", replica_num: 0, project_name: project });
    const running = await waitStatus(project, "gw-pub", "running");
    expect(running.replicas[0]).toMatchObject({
      instance_id: instance!.id,
      hostname: instance!.publicIp,
      region: REGION,
    });

    await deleteAndWait(project, "gw-pub");
    const after = await instancesOf(project);
    expect(after).toHaveLength(1);
    expect(["shutting-down", "terminated"]).toContain(after[0]!.state);
  });

  it("places a private gateway in a private subnet without a public address, via an assumed role", async () => {
    await clearFaults();
    const project = await awsProject({ role_arn: ROLE });
    const before = (await fake()).calls.filter((c) => c.action === "AssumeRole").length;
    expect((await applyConfig(project, awsConfig("gw-priv", { public_ip: false }))).status).toBe(201);
    const g = await waitFor("private replica", async () => {
      const body = (await getGateway(project, "gw-priv")).body;
      return body.replicas[0]?.hostname ? body : null;
    });
    const [instance] = await instancesOf(project);
    const state = await fake();
    expect(instance!.publicIp).toBeNull();
    expect(state.subnets.find((s) => s.id === instance!.subnetId)?.public).toBe(false);
    expect(g.replicas[0]!.hostname).toBe(instance!.privateIp);
    expect(state.calls.filter((c) => c.action === "AssumeRole").length).toBeGreaterThan(before);
    await deleteAndWait(project, "gw-priv");
  });

  it("fronts an ACM gateway with an ALB, registers its replicas, and removes it all on delete", async () => {
    await clearFaults();
    await fake("certificates", { arn: CERT });
    const project = await awsProject();
    const config = awsConfig("gw-acm", { certificate: { type: "acm", arn: CERT }, replicas: 2 });
    expect((await applyConfig(project, config)).status).toBe(201);
    const instances = await waitFor("two instances", async () => {
      const found = await instancesOf(project);
      return found.length === 2 ? found : null;
    });
    let state = await fake();
    const hostname = (await getGateway(project, "gw-acm")).body.hostname;
    const lb = state.loadBalancers.find((l) => l.dnsName === hostname)!;
    expect(lb).toBeTruthy();
    expect(lb.scheme).toBe("internet-facing");
    expect(new Set(lb.subnetIds.map((id) => state.subnets.find((s) => s.id === id)?.az)).size).toBe(2);
    const listeners = state.listeners.filter((l) => l.lbArn === lb.arn);
    expect(listeners.map((l) => [l.port, l.protocol, l.action.type, l.certificateArn]).sort()).toEqual([
      [443, "HTTPS", "forward", CERT],
      [80, "HTTP", "redirect", null],
    ]);
    // An agent starts once its host runs: the reconciler's describes move the fake's instances on.
    await waitFor(
      "instances running",
      async () => (await instancesOf(project)).every((i) => i.state === "running"),
      20_000,
    );
    for (const i of instances) await registerFromUserData(i);
    await waitStatus(project, "gw-acm", "running");
    const tg = await waitFor("targets registered", async () => {
      const t = (await fake()).targetGroups.find((x) => x.name === lb.name.replace(/-lb$/, "-tg"));
      return t && t.targets.length === 2 ? t : null;
    });
    expect(tg.targets.map((t) => t.id).sort()).toEqual(instances.map((i) => i.id).sort());

    await deleteAndWait(project, "gw-acm");
    state = await fake();
    expect(state.loadBalancers.find((l) => l.arn === lb.arn)).toBeUndefined();
    expect(state.targetGroups.find((t) => t.arn === tg.arn)).toBeUndefined();
    expect(state.listeners.filter((l) => l.lbArn === lb.arn)).toEqual([]);
    expect((await instancesOf(project)).every((i) => i.state !== "running" && i.state !== "pending")).toBe(true);
  });

  it("retries a load balancer whose answer was lost, without a second ALB or target group", async () => {
    await clearFaults();
    await fake("certificates", { arn: CERT });
    // The target group is created each time, but no answer arrives: the step fails, retryable.
    await injectFaults([{ kind: "drop", action: "CreateTargetGroup", count: 4 }]);
    const project = await awsProject();
    const created = await applyConfig(project, awsConfig("gw-lbretry", { certificate: { type: "acm", arn: CERT } }));
    const names = lbNames(created.body.id);
    const waiting = await waitFor("load balancer retry", async () => {
      const g = (await getGateway(project, "gw-lbretry")).body;
      return g.status_message?.startsWith("Load balancer attempt 1/15 failed, retrying in 1 min") ? g : null;
    });
    expect(waiting.status).toBe("submitted");
    expect(waiting.replicas).toEqual([]);

    const stub = await gatewayStub(project, "gw-lbretry");
    await runInDurableObject(stub, (_o, s) =>
      s.storage.sql.exec("UPDATE gateway SET backend_data = json_set(backend_data, '$.lb_next_attempt_at', 0)"),
    );
    await runDurableObjectAlarm(stub);
    const g = await waitFor("provisioning", async () => {
      const x = (await getGateway(project, "gw-lbretry")).body;
      return x.status === "provisioning" ? x : null;
    });
    const state = await fake();
    expect(state.loadBalancers.filter((l) => l.name === names.lb)).toHaveLength(1);
    expect(state.targetGroups.filter((t) => t.name === names.tg)).toHaveLength(1);
    expect(g.hostname).toBe(state.loadBalancers.find((l) => l.name === names.lb)!.dnsName);
    await deleteAndWait(project, "gw-lbretry");
    const after = await fake();
    expect(after.loadBalancers.filter((l) => l.name === names.lb)).toEqual([]);
    expect(after.targetGroups.filter((t) => t.name === names.tg)).toEqual([]);
  });

  it("removes a half-made load balancer (answer lost) when the gateway is deleted before the retry", async () => {
    await clearFaults();
    await fake("certificates", { arn: CERT });
    await injectFaults([{ kind: "drop", action: "CreateTargetGroup", count: 4 }]);
    const project = await awsProject();
    const created = await applyConfig(project, awsConfig("gw-lbhalf", { certificate: { type: "acm", arn: CERT } }));
    const names = lbNames(created.body.id);
    await waitFor("load balancer retry", async () =>
      (await getGateway(project, "gw-lbhalf")).body.status_message?.startsWith("Load balancer attempt 1/15"),
    );
    const before = await fake();
    expect(before.loadBalancers.filter((l) => l.name === names.lb)).toHaveLength(1);
    // The target group exists, but its ARN never reached the object: the delete finds it by name.
    expect(before.targetGroups.filter((t) => t.name === names.tg)).toHaveLength(1);
    await deleteAndWait(project, "gw-lbhalf");
    const after = await fake();
    expect(after.loadBalancers.filter((l) => l.name === names.lb)).toEqual([]);
    expect(after.targetGroups.filter((t) => t.name === names.tg)).toEqual([]);
    expect(await instancesOf(project)).toEqual([]);
  });

  it("fails an ACM gateway whose VPC has subnets in one AZ only, with the reason", async () => {
    await clearFaults();
    const vpc = await fake<{ vpc_id: string }>("vpcs", { region: REGION, subnets: [{ az: "a", public: true }] });
    const project = await awsProject({ vpc_id: vpc.vpc_id });
    await applyConfig(project, awsConfig("gw-1az", { certificate: { type: "acm", arn: CERT } }));
    const g = await waitStatus(project, "gw-1az", "failed");
    expect(g.status_message).toContain("requires at least two subnets in different AZs");
    expect(g.status_message).toContain(vpc.vpc_id);
    expect(await instancesOf(project)).toEqual([]);
    await deleteAndWait(project, "gw-1az");
  });

  it("rides out throttling, 500s and a hung call within one pass, with one instance", async () => {
    await clearFaults();
    await injectFaults([
      { kind: "throttle", action: "DescribeImages", count: 2 },
      { kind: "error500", action: "RunInstances", count: 1 },
      { kind: "hang", action: "RunInstances", count: 1 },
    ]);
    const project = await awsProject();
    await applyConfig(project, awsConfig("gw-flaky"));
    await waitFor(
      "instance",
      async () => (await getGateway(project, "gw-flaky")).body.replicas[0]?.instance_id,
      30_000,
    );
    const state = await fake();
    expect(state.calls.filter((c) => c.status === 503 && c.action === "DescribeImages").length).toBeGreaterThanOrEqual(
      2,
    );
    expect(state.calls.some((c) => c.status === "hung")).toBe(true);
    expect(await instancesOf(project)).toHaveLength(1);
    await deleteAndWait(project, "gw-flaky");
  });

  it("finds the instance of a lost RunInstances answer by its ClientToken: no duplicate, no orphan", async () => {
    await clearFaults();
    // Every attempt of the first pass creates (the same) instance and loses the answer.
    await injectFaults([{ kind: "drop", action: "RunInstances", count: 4 }]);
    const project = await awsProject();
    await applyConfig(project, awsConfig("gw-lost"));
    const g = await waitFor("retry scheduled", async () => {
      const body = (await getGateway(project, "gw-lost")).body;
      return body.replicas[0]?.status_message?.startsWith("Attempt 1/15 failed") ? body : null;
    });
    expect(g.replicas[0]!.instance_id).toBeNull();
    expect(await instancesOf(project)).toHaveLength(1);

    // The object restarts (in-memory state gone), then the retry falls due.
    const stub = await gatewayStub(project, "gw-lost");
    await expect(
      runInDurableObject(stub, (_o, state) => {
        state.abort("simulated restart");
      }),
    ).rejects.toThrow("simulated restart");
    const fresh = await gatewayStub(project, "gw-lost");
    await runInDurableObject(fresh, (_o, s) => s.storage.sql.exec("UPDATE replicas SET next_attempt_at = 0"));
    await runDurableObjectAlarm(fresh);
    const instances = await instancesOf(project);
    expect(instances).toHaveLength(1);
    expect((await getGateway(project, "gw-lost")).body.replicas[0]!.instance_id).toBe(instances[0]!.id);
    await deleteAndWait(project, "gw-lost");
  });

  it("terminates the instance of a lost answer when the gateway is deleted before the retry", async () => {
    await clearFaults();
    await injectFaults([{ kind: "drop", action: "RunInstances", count: 4 }]);
    const project = await awsProject();
    await applyConfig(project, awsConfig("gw-orphan"));
    await waitFor("retry scheduled", async () =>
      (await getGateway(project, "gw-orphan")).body.replicas[0]?.status_message?.startsWith("Attempt 1/15"),
    );
    await deleteAndWait(project, "gw-orphan");
    const [instance] = await instancesOf(project);
    expect(["shutting-down", "terminated"]).toContain(instance!.state);
  });

  it("creates one instance when the alarm fires twice at once", async () => {
    await clearFaults();
    const project = await awsProject();
    await applyConfig(project, awsConfig("gw-twice"));
    const stub = await gatewayStub(project, "gw-twice");
    await runInDurableObject(stub, async (obj) => {
      await Promise.all([obj.alarm(), obj.alarm()]);
    });
    await waitFor("instance", async () => (await getGateway(project, "gw-twice")).body.replicas[0]?.instance_id);
    expect(await instancesOf(project)).toHaveLength(1);
    await deleteAndWait(project, "gw-twice");
  });

  it("fails the gateway with AWS's message when the credentials are wrong", async () => {
    await clearFaults();
    const project = await awsProject({ secret_access_key: "not-the-right-secret" });
    await applyConfig(project, awsConfig("gw-badkey"));
    const g = await waitStatus(project, "gw-badkey", "failed");
    expect(g.status_message).toBe(
      "Failed to provision gateway replica 0: AWS Error: AuthFailure: AWS was not able to validate the provided access credentials",
    );
    expect(await instancesOf(project)).toEqual([]);
    // Whether the failed create left an instance cannot be known with keys AWS refuses: the delete
    // keeps retrying its lookup until the project's credentials are fixed.
    await api("PUT", `/api/v1/projects/${project}/backends/aws`, { ...KEY, endpoint_url: FAKE, timeout_seconds: 2 });
    const stub = await gatewayStub(project, "gw-badkey");
    await api("POST", `/api/v1/projects/${project}/gateways/delete`, { names: ["gw-badkey"] });
    await runInDurableObject(stub, (_o, s) => s.storage.sql.exec("UPDATE replicas SET next_attempt_at = 0"));
    await runDurableObjectAlarm(stub);
    await waitFor("gateway gone", async () => (await getGateway(project, "gw-badkey")).status === 404, 30_000);
    expect(await instancesOf(project)).toEqual([]);
  });

  it("refuses a bad endpoint_url with the field named", async () => {
    const project = await newProject();
    const res = await api("PUT", `/api/v1/projects/${project}/backends/aws`, { ...KEY, endpoint_url: "ftp://x" });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("endpoint_url");
  });
});
