/**
 * The fake GCP speaks Google's wire format: Google's own auth library (google-auth-library, the
 * client every Google SDK uses) gets a token from it with a service-account key, and its
 * authorised requests read the fake's Compute resources. Also drives the gcp backend module
 * directly against the fake for what the GatewayObject tests do not reach.
 */
import { JWT } from "google-auth-library";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gcpBackend } from "../../durable-objects/backends/gcp/backend.ts";
import { BackendError } from "../../durable-objects/backends/types.ts";
import { type FakeGcp, startFakeGcp } from "../fakes/gcp/server.ts";

let fake: FakeGcp;
beforeAll(async () => {
  fake = await startFakeGcp();
});
afterAll(() => fake.stop());

const bootstrap = {
  control_plane_url: "https://gateplane.example.com",
  object_id: "a".repeat(64),
  gateway_id: "3f0c1d5e-8a5b-4c1e-9f7a-2b6d4e8c0a1f",
  gateway_name: "gw",
  project_name: "main",
  replica_num: 0,
  bootstrap_secret: "s".repeat(43),
};

describe("fake GCP against Google's client", () => {
  it("issues tokens to google-auth-library's JWT flow and serves Compute resources to it", async () => {
    const client = new JWT({
      email: fake.serviceAccountKey.client_email,
      key: fake.serviceAccountKey.private_key,
      scopes: ["https://www.googleapis.com/auth/compute"],
    });
    // The library posts to Google's fixed token URL; send that one request to the fake instead.
    client.transporter.interceptors.request.add({
      resolved: async (config) => {
        if (String(config.url) === "https://oauth2.googleapis.com/token") config.url = new URL(fake.tokenUri);
        return config;
      },
    });
    const { token } = await client.getAccessToken();
    expect(token).toMatch(/^ya29\./);
    const res = await client.request<{ kind: string; items: unknown[] }>({
      url: `${fake.url}/compute/v1/projects/${fake.projectId}/zones/us-central1-a/instances`,
    });
    expect(res.data.kind).toBe("compute#instanceList");
  });

  it("refuses an assertion signed by another key, as Google does", async () => {
    const other = await startFakeGcp();
    try {
      const client = new JWT({
        email: fake.serviceAccountKey.client_email,
        key: other.serviceAccountKey.private_key,
        scopes: ["https://www.googleapis.com/auth/compute"],
      });
      client.transporter.interceptors.request.add({
        resolved: async (config) => {
          config.url = new URL(fake.tokenUri);
          // gaxios' default redactor trips over this error's request; the message is what matters.
          config.errorRedactor = false;
          return config;
        },
      });
      await expect(client.getAccessToken()).rejects.toThrow(/invalid_grant|Invalid JWT Signature/);
    } finally {
      await other.stop();
    }
  });
});

describe("gcp backend module", () => {
  const backend = () =>
    gcpBackend({
      credentials: {
        project_id: fake.projectId,
        service_account_key: fake.serviceAccountKey as never,
        api_endpoint: fake.url,
      },
      agentPackageUrl: "https://downloads.example.com/gateplane.tgz",
      timeoutMs: 500,
      retryDelayMs: 10,
      pollIntervalMs: 20,
    });
  const spec = (token: string) => ({
    name: "gp-main-gw-0",
    clientToken: token,
    region: "europe-west4",
    instanceType: null,
    publicIp: true,
    tags: { owner: "gateplane" },
    bootstrap,
    router: null,
  });

  it("creates once per client token, finds and deletes by it, and names a zone it picked", async () => {
    const b = backend();
    const net = await b.ensureNetwork({
      projectName: "main",
      gatewayName: "gw",
      region: "europe-west4",
      publicIp: true,
      tags: {},
    });
    expect(net.zone).toBe("europe-west4-a");
    const first = await b.createInstance(spec("t-1"), net);
    const again = await b.createInstance(spec("t-1"), net);
    expect(again.instanceId).toBe(first.instanceId);
    expect(fake.state().instances.filter((i) => i.zone.endsWith("europe-west4-a"))).toHaveLength(1);
    expect((await b.findInstance(spec("t-1")))?.instanceId).toBe(first.instanceId);
    expect(await b.findInstance(spec("t-2"))).toBeNull();
    await b.terminateInstance(first.instanceId, "europe-west4");
    await b.terminateInstance(first.instanceId, "europe-west4");
    expect(await b.describeInstance(first.instanceId, "europe-west4")).toBeNull();
  });

  it("signs a fresh token when the cached one is refused", async () => {
    const b = backend();
    expect(await b.findInstance(spec("t-5"))).toBeNull();
    fake.revokeTokens();
    expect(await b.findInstance(spec("t-5"))).toBeNull();
  });

  it("turns exhausted retries into retryable errors and bad requests into final ones", async () => {
    const b = backend();
    Object.assign(fake.faults, { throttle: 10 });
    const err = await b.findInstance(spec("t-3")).catch((e) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringContaining("GCP Error: rateLimitExceeded:") });
    Object.assign(fake.faults, { throttle: 0, delay_calls: 4, delay_ms: 700 });
    const slow = await b.findInstance(spec("t-3")).catch((e) => e);
    expect(slow).toMatchObject({ retryable: true, code: "Timeout" });
    Object.assign(fake.faults, { delay_calls: 0 });
    const bad = await b
      .createInstance({ ...spec("t-4"), instanceType: "m9-huge" }, { zone: "europe-west4-a" })
      .catch((e) => e);
    expect(bad).toMatchObject({ retryable: false, message: expect.stringContaining("GCP Error: invalid:") });
    await expect(
      b.ensureNetwork({ projectName: "m", gatewayName: "g", region: "mars-north1", publicIp: true, tags: {} }),
    ).rejects.toThrow(/GCP Error: notFound: region mars-north1/);
  });
});
