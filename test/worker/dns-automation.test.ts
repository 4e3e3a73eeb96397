/**
 * DNS automation through the GatewayObject: with Cloudflare credentials in the project, a gateway
 * creates its wildcard record when its address is known and removes it when deleted, against the
 * fake Cloudflare API (and the fake Kubernetes cluster for the gateway) from global-setup-clouds.ts.
 */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { api, applyConfig, gatewayStub, getGateway, newProject, waitFor } from "./helpers.ts";

const CF = env.CLOUDFLARE_FAKE_URL;
const CF_ORIGIN = new URL(CF).origin;
const KUBE = env.KUBERNETES_FAKE_URL;

interface CfState {
  token: string;
  zone_id: string;
  records: { id: string; type: string; name: string; content: string; proxied: boolean; comment: string }[];
}
const cfState = async () => ((await (await fetch(`${CF_ORIGIN}/__state`)).json()) as { result: CfState }).result;
const cfControl = (f: Record<string, number>) =>
  fetch(`${CF_ORIGIN}/__control`, { method: "POST", body: JSON.stringify(f) });
const kubeControl = (f: Record<string, string | number>) =>
  fetch(`${KUBE}/__control`, { method: "POST", body: JSON.stringify(f) });
const recordsFor = async (domain: string) => (await cfState()).records.filter((r) => r.name === `*.${domain}`);

async function project(cloudflare: "ok" | "bad-token" = "ok"): Promise<string> {
  const p = await newProject();
  const kube = (await (await fetch(`${KUBE}/__state`)).json()) as { token: string };
  const k8s = await api("PUT", `/api/v1/projects/${p}/backends/kubernetes`, { server: KUBE, token: kube.token });
  expect(k8s.status, JSON.stringify(k8s.body)).toBe(200);
  const cf = await cfState();
  const put = await api("PUT", `/api/v1/projects/${p}/dns/cloudflare`, {
    api_token: cloudflare === "ok" ? cf.token : "revoked",
    zone_id: cf.zone_id,
    api_endpoint: CF,
  });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  return p;
}

const config = (name: string, domain: string) => ({
  type: "gateway",
  name,
  backend: "kubernetes",
  region: "cluster",
  domain,
});

const events = async (p: string, gateway: string): Promise<string[]> =>
  (await api("GET", `/api/v1/projects/${p}/events?gateway=${gateway}`)).body.events.map(
    (e: { message: string }) => e.message,
  );

describe("DNS automation with Cloudflare", { timeout: 30_000 }, () => {
  afterEach(async () => {
    await cfControl({ fail: 0, throttle: 0 });
    await kubeControl({ lb_mode: "ip", lb_reads: 1 });
  });

  it("creates the wildcard CNAME for a load balancer's DNS name and removes it with the gateway", async () => {
    await kubeControl({ lb_mode: "hostname" });
    const p = await project();
    expect((await applyConfig(p, config("gw-dns", "dns1.example.com"))).status).toBe(201);
    const g = await waitFor("hostname", async () => (await getGateway(p, "gw-dns")).body.replicas[0]?.hostname, 20_000);
    const [record] = await waitFor("record", async () => {
      const r = await recordsFor("dns1.example.com");
      return r.length > 0 ? r : null;
    });
    expect(record).toMatchObject({ type: "CNAME", content: g, proxied: false });
    expect(await recordsFor("dns1.example.com")).toHaveLength(1);
    expect(await events(p, "gw-dns")).toContain(`DNS record *.dns1.example.com CNAME ${g} created in Cloudflare`);

    expect((await api("DELETE", `/api/v1/projects/${p}/gateways/gw-dns`)).status).toBe(202);
    await waitFor("gone", async () => (await getGateway(p, "gw-dns")).status === 404, 20_000);
    expect(await recordsFor("dns1.example.com")).toHaveLength(0);
  });

  it("retries after Cloudflare errors without making a second record", async () => {
    const p = await project();
    await cfControl({ fail: 3, throttle: 1 });
    await applyConfig(p, config("gw-dns-retry", "dns2.example.com"));
    await waitFor(
      "failure event",
      async () =>
        (await events(p, "gw-dns-retry")).some((m) => m.startsWith("DNS automation failed: Cloudflare Error:")),
      20_000,
    );
    // The object asked for another pass; run it now rather than in 30 s.
    await runDurableObjectAlarm(await gatewayStub(p, "gw-dns-retry"));
    const records = await waitFor("record", async () => {
      const r = await recordsFor("dns2.example.com");
      return r.length > 0 ? r : null;
    });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ type: "A", content: expect.stringMatching(/^203\.0\.113\./) });
    await api("DELETE", `/api/v1/projects/${p}/gateways/gw-dns-retry`);
    await waitFor("gone", async () => (await getGateway(p, "gw-dns-retry")).status === 404, 20_000);
    expect(await recordsFor("dns2.example.com")).toHaveLength(0);
  });

  it("keeps the gateway running and says why when Cloudflare refuses the token", async () => {
    const p = await project("bad-token");
    await applyConfig(p, config("gw-dns-bad", "dns3.example.com"));
    await waitFor(
      "event",
      async () =>
        (await events(p, "gw-dns-bad")).includes(
          "DNS automation failed: Cloudflare Error: 10000: Authentication error",
        ),
      20_000,
    );
    expect((await getGateway(p, "gw-dns-bad")).body.status).not.toBe("failed");
    expect(await recordsFor("dns3.example.com")).toHaveLength(0);
    await api("DELETE", `/api/v1/projects/${p}/gateways/gw-dns-bad`);
    await waitFor("gone", async () => (await getGateway(p, "gw-dns-bad")).status === 404, 20_000);
  });

  it("validates the credentials and the provider, naming the field", async () => {
    const p = await newProject();
    const bad = await api("PUT", `/api/v1/projects/${p}/dns/cloudflare`, { api_token: "t", zone_id: "nope" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("zone_id");
    const unknown = await api("PUT", `/api/v1/projects/${p}/dns/route66`, { api_token: "t" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.field).toBe("provider");
    expect((await api("GET", `/api/v1/projects/${p}/dns/cloudflare`)).body).toMatchObject({ configured: false });
  });
});
