/**
 * The gcp backend through the GatewayObject, against the fake Compute Engine started by
 * global-setup-clouds.ts: create → running → delete, private gateways, faults, bad credentials.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, applyConfig, gatewayStub, getGateway, newProject, objectSql, registerAgent, waitFor } from "./helpers.ts";

const FAKE = env.GCP_FAKE_URL;

interface FakeInstance {
  name: string;
  status: string;
  labels: Record<string, string>;
  tags: { items: string[] };
  metadata: { items: { key: string; value: string }[] };
  networkInterfaces: { networkIP: string; accessConfigs?: { natIP: string }[] }[];
}
interface FakeState {
  instances: FakeInstance[];
  firewalls: { name: string; allowed: unknown; targetTags: string[]; sourceRanges: string[] }[];
  inserts: number;
  deletes: string[];
  /** Calls the fake is still holding back (`delay_calls`). */
  held: number;
}

const state = async () => (await (await fetch(`${FAKE}/__state`)).json()) as FakeState;
const control = async (faults: Record<string, number | string>) =>
  fetch(`${FAKE}/__control`, { method: "POST", body: JSON.stringify(faults) });
const serviceAccountKey = async () => (await (await fetch(`${FAKE}/__key`)).json()) as Record<string, string>;
const instancesOf = async (project: string, gateway: string) =>
  (await state()).instances.filter(
    (i) => i.labels.gateplane_project === project && i.labels.gateplane_gateway === gateway,
  );

async function gcpProject(key?: Record<string, string>): Promise<string> {
  const project = await newProject();
  const put = await api("PUT", `/api/v1/projects/${project}/backends/gcp`, {
    project_id: "gateplane-test",
    service_account_key: key ?? (await serviceAccountKey()),
    api_endpoint: FAKE,
  });
  expect(put.status).toBe(200);
  return project;
}

const gcpConfig = (name: string, extra: Record<string, unknown> = {}) => ({
  type: "gateway",
  name,
  backend: "gcp",
  region: "us-central1",
  domain: "gw.example.com",
  ...extra,
});

const waitReplica = (project: string, name: string, what: string, pred: (g: any) => boolean) =>
  waitFor(
    what,
    async () => {
      const g = (await getGateway(project, name)).body;
      return pred(g) ? g : null;
    },
    20_000,
  );

describe("gcp backend", { timeout: 30_000 }, () => {
  it("provisions a VM with the agent's cloud-init behind a firewall rule, runs, and deletes it", async () => {
    const project = await gcpProject();
    const created = await applyConfig(project, gcpConfig("gw-gcp", { tags: { Team: "ML Ops", "9lives": "x" } }));
    expect(created.status).toBe(201);
    const g = await waitReplica(project, "gw-gcp", "instance", (x) => x.replicas[0]?.instance_id);
    const replica = g.replicas[0]!;
    // The region's first zone in name order, as dstack picks it.
    expect(replica.instance_id).toMatch(/^us-central1-a\/gp-[a-z0-9-]+-[0-9a-f]{8}$/);

    const [vm] = await instancesOf(project, "gw-gcp");
    expect(vm).toBeDefined();
    expect(vm!.labels).toMatchObject({ owner: "gateplane", team: "ml_ops", t_9lives: "x", gateplane_replica: "0" });
    expect(vm!.tags.items).toEqual(["gateplane-gateway"]);
    const userData = vm!.metadata.items.find((i) => i.key === "user-data")!.value;
    expect(userData.startsWith("#cloud-config\n")).toBe(true);
    expect(userData).toContain(g.id);
    expect(userData).toContain("https://downloads.gateplane.test/gateplane-0.1.0.tgz");
    const fw = (await state()).firewalls.find((f) => f.name === "gateplane-gateway-in-default")!;
    expect(fw).toMatchObject({
      allowed: [{ IPProtocol: "tcp", ports: ["80", "443"] }],
      targetTags: ["gateplane-gateway"],
      sourceRanges: ["0.0.0.0/0"],
    });

    // The public NAT IP becomes the hostname once described.
    const withIp = await waitReplica(project, "gw-gcp", "public ip", (x) =>
      x.replicas[0]?.hostname?.startsWith("34.70."),
    );
    // The API says which record to create for <service>.gw.example.com.
    expect(withIp.dns_records).toEqual([{ name: "*.gw.example.com", type: "A", value: withIp.replicas[0]!.hostname }]);
    expect((await registerAgent(project, "gw-gcp")).res.status).toBe(200);
    await waitReplica(project, "gw-gcp", "running", (x) => x.status === "running");

    expect((await api("DELETE", `/api/v1/projects/${project}/gateways/gw-gcp`)).status).toBe(202);
    await waitFor("gone", async () => (await getGateway(project, "gw-gcp")).status === 404, 20_000);
    expect(await instancesOf(project, "gw-gcp")).toHaveLength(0);
  });

  it("gives private gateways no external address and uses the internal IP", async () => {
    const project = await gcpProject();
    expect((await applyConfig(project, gcpConfig("gw-private", { public_ip: false, certificate: null }))).status).toBe(
      201,
    );
    const g = await waitReplica(project, "gw-private", "hostname", (x) => x.replicas[0]?.hostname);
    expect(g.replicas[0]!.hostname).toMatch(/^10\.128\.0\.\d+$/);
    const [vm] = await instancesOf(project, "gw-private");
    expect(vm!.networkInterfaces[0]!.accessConfigs).toBeUndefined();
    await api("DELETE", `/api/v1/projects/${project}/gateways/gw-private`);
    await waitFor("gone", async () => (await getGateway(project, "gw-private")).status === 404, 20_000);
    expect(await instancesOf(project, "gw-private")).toHaveLength(0);
  });

  it("rides out throttling, 503s and a timed-out call without a second VM", async () => {
    const project = await gcpProject();
    // One call held past the 3 s deadline (the cloud carries it out late), then a 429 and a 5xx: the
    // four in-call tries see timeout, 429, 5xx, success. (With a second 429 the fourth try would
    // pass only if the late call happened to land first and take that 429.)
    await control({ throttle: 1, fail: 1, delay_calls: 1, delay_ms: 4_000 });
    expect((await applyConfig(project, gcpConfig("gw-faults"))).status).toBe(201);
    const g = await waitReplica(project, "gw-faults", "instance", (x) => x.replicas[0]?.instance_id);
    expect(g.replicas[0]!.status).toBe("provisioning");
    // The late call lands after the retry; the same request id keeps it from making a second VM.
    await waitFor("the late call carried out", async () => (await state()).held === 0);
    expect(await instancesOf(project, "gw-faults")).toHaveLength(1);
    await api("DELETE", `/api/v1/projects/${project}/gateways/gw-faults`);
    await waitFor("gone", async () => (await getGateway(project, "gw-faults")).status === 404, 20_000);
    expect(await instancesOf(project, "gw-faults")).toHaveLength(0);
  });

  it("finds its VM again after an insert whose answer was lost and a restart, and when the alarm fires twice", async () => {
    const project = await gcpProject();
    // Every call of the first pass fails for longer than the in-call retries: the replica waits.
    await control({ fail: 20 });
    expect((await applyConfig(project, gcpConfig("gw-lost"))).status).toBe(201);
    await waitReplica(project, "gw-lost", "retry scheduled", (x) =>
      x.replicas[0]?.status_message?.includes("retrying"),
    );
    // Every try of the pass (the in-call retries replay the request id) loses its answer.
    await control({ fail: 0, drop_inserts: 4 });
    await objectSql(project, "gw-lost", "UPDATE replicas SET next_attempt_at = 0");
    await runDurableObjectAlarm(await gatewayStub(project, "gw-lost"));
    const [row] = await objectSql<{ instance_id: string | null; attempt: number }>(
      project,
      "gw-lost",
      "SELECT instance_id, attempt FROM replicas",
    );
    expect(row).toMatchObject({ instance_id: null, attempt: 2 });
    expect(await instancesOf(project, "gw-lost")).toHaveLength(1);
    await expect(
      runInDurableObject(await gatewayStub(project, "gw-lost"), (_o, s) => s.abort("simulated restart")),
    ).rejects.toThrow("simulated restart");

    await objectSql(project, "gw-lost", "UPDATE replicas SET next_attempt_at = 0");
    const stub = await gatewayStub(project, "gw-lost");
    await Promise.all([runDurableObjectAlarm(stub), runDurableObjectAlarm(stub)]);
    const g = await waitReplica(project, "gw-lost", "instance", (x) => x.replicas[0]?.instance_id);
    const vms = await instancesOf(project, "gw-lost");
    expect(vms).toHaveLength(1);
    expect(g.replicas[0]!.instance_id).toBe(`us-central1-a/${vms[0]!.name}`);

    await api("DELETE", `/api/v1/projects/${project}/gateways/gw-lost`);
    await waitFor("gone", async () => (await getGateway(project, "gw-lost")).status === 404, 20_000);
    expect(await instancesOf(project, "gw-lost")).toHaveLength(0);
  });

  it("fails the gateway with Google's message when the key is not the service account's", async () => {
    const pair = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
    const pem = `-----BEGIN PRIVATE KEY-----\n${btoa(String.fromCharCode(...der))
      .match(/.{1,64}/g)!
      .join("\n")}\n-----END PRIVATE KEY-----\n`;
    const project = await gcpProject({ ...(await serviceAccountKey()), private_key: pem });
    expect((await applyConfig(project, gcpConfig("gw-badkey"))).status).toBe(201);
    const g = await waitReplica(project, "gw-badkey", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("GCP Error: invalid_grant: Invalid JWT Signature.");
    expect(await instancesOf(project, "gw-badkey")).toHaveLength(0);
  });

  it("fails the gateway with the operation's error when the insert fails", async () => {
    const project = await gcpProject();
    await control({ fail_insert_with: "QUOTA_EXCEEDED" });
    expect((await applyConfig(project, gcpConfig("gw-quota"))).status).toBe(201);
    const g = await waitReplica(project, "gw-quota", "failed", (x) => x.status === "failed");
    expect(g.status_message).toContain("GCP Error: QUOTA_EXCEEDED: injected: QUOTA_EXCEEDED");
    expect(await instancesOf(project, "gw-quota")).toHaveLength(0);
  });
});
