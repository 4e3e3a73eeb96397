/**
 * The fake Kubernetes API server speaks the real wire format: the official client
 * (@kubernetes/client-node) creates, reads, lists and deletes the objects the backend uses, and
 * reads its Status errors (409 AlreadyExists, 404 NotFound, 401) as it would a cluster's. The
 * backend module's own manifests are accepted by the fake's validation.
 */
import { AppsV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubernetesBackend } from "../../durable-objects/backends/kubernetes/backend.ts";
import { replicaObjects } from "../../durable-objects/backends/kubernetes/manifests.ts";
import { type FakeKube, startFakeKube } from "../fakes/kubernetes/server.ts";

let fake: FakeKube;
beforeAll(async () => {
  fake = await startFakeKube({ namespaces: ["gateways"] });
});
afterAll(() => fake.stop());

const bootstrap = {
  control_plane_url: "https://gateplane.example.com",
  object_id: "b".repeat(64),
  gateway_id: "3f0c1d5e-8a5b-4c1e-9f7a-2b6d4e8c0a1f",
  gateway_name: "gw",
  project_name: "main",
  replica_num: 0,
  bootstrap_secret: "s".repeat(43),
};

function clients(token: string) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // The client refuses plain http unless TLS checks are off; the fake serves http on loopback.
    clusters: [{ name: "fake", server: fake.url, skipTLSVerify: true }],
    users: [{ name: "gateplane", token }],
    contexts: [{ name: "fake", cluster: "fake", user: "gateplane" }],
    currentContext: "fake",
  });
  return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

describe("fake Kubernetes API server against @kubernetes/client-node", () => {
  it("creates, reads, lists and deletes the backend's Secret, Deployment and Service", async () => {
    const { core, apps } = clients(fake.token);
    const objects = replicaObjects({
      name: "gp-main-gw-0-0123abcd",
      namespace: "gateways",
      labels: { "app.kubernetes.io/managed-by": "gateplane", "gateplane.dev/replica": "gp-main-gw-0-0123abcd" },
      bootstrap,
      image: "node:22-bookworm-slim",
      agentPackageUrl: "https://downloads.example.com/gateplane.tgz",
    });
    const secret = await core.createNamespacedSecret({ namespace: "gateways", body: objects.secret as never });
    expect(secret.metadata?.uid).toBeTruthy();
    expect(JSON.parse(Buffer.from(secret.data!["bootstrap.json"]!, "base64").toString())).toEqual(bootstrap);
    const dep = await apps.createNamespacedDeployment({ namespace: "gateways", body: objects.deployment as never });
    expect(dep.spec?.template.spec?.containers[0]?.ports?.map((p) => p.containerPort)).toEqual([80, 443]);
    const svc = await core.createNamespacedService({ namespace: "gateways", body: objects.service as never });
    expect(svc.spec?.type).toBe("LoadBalancer");

    const read = await core.readNamespacedService({ name: "gp-main-gw-0-0123abcd", namespace: "gateways" });
    expect(read.status?.loadBalancer?.ingress?.[0]?.ip).toMatch(/^203\.0\.113\./);
    expect(Number(read.metadata?.resourceVersion)).toBeGreaterThan(Number(svc.metadata?.resourceVersion));
    const list = await core.listNamespacedService({
      namespace: "gateways",
      labelSelector: "app.kubernetes.io/managed-by=gateplane",
    });
    expect(list.items.map((s) => s.metadata?.name)).toEqual(["gp-main-gw-0-0123abcd"]);

    const conflict = await core
      .createNamespacedService({ namespace: "gateways", body: objects.service as never })
      .catch((e) => e);
    expect(conflict.code).toBe(409);
    expect(JSON.parse(conflict.body)).toMatchObject({ kind: "Status", reason: "AlreadyExists" });

    await core.deleteNamespacedService({ name: "gp-main-gw-0-0123abcd", namespace: "gateways" });
    await apps.deleteNamespacedDeployment({ name: "gp-main-gw-0-0123abcd", namespace: "gateways" });
    await core.deleteNamespacedSecret({ name: "gp-main-gw-0-0123abcd-bootstrap", namespace: "gateways" });
    const missing = await core
      .readNamespacedService({ name: "gp-main-gw-0-0123abcd", namespace: "gateways" })
      .catch((e) => e);
    expect(missing.code).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ reason: "NotFound" });
  });

  it("answers 401 to a wrong token and 422 to an invalid object", async () => {
    const bad = await clients("nope")
      .core.readNamespace({ name: "default" })
      .catch((e) => e);
    expect(bad.code).toBe(401);
    const { apps } = clients(fake.token);
    const invalid = await apps
      .createNamespacedDeployment({
        namespace: "gateways",
        body: {
          metadata: { name: "x" },
          spec: {
            selector: { matchLabels: { a: "1" } },
            template: { metadata: { labels: { a: "2" } }, spec: { containers: [{ name: "c", image: "i" }] } },
          },
        },
      })
      .catch((e) => e);
    expect(invalid.code).toBe(422);
    expect(JSON.parse(invalid.body).message).toContain("selector` does not match template `labels`");
  });
});

describe("kubernetes backend module", () => {
  it("refuses plain http to a non-loopback server and an mTLS binding the Worker lacks", () => {
    const credentials = { server: "http://k8s.example.com", token: "t", namespace: "default" };
    const b = () => kubernetesBackend({ credentials, agentPackageUrl: "https://x.example/a.tgz" }).ensureNetwork;
    expect(b).toThrow(/server: expected an https URL/);
    expect(() =>
      kubernetesBackend({
        credentials: { server: "https://k8s.example.com", namespace: "default", mtls_certificate_binding: "K8S_CERT" },
        agentPackageUrl: "https://x.example/a.tgz",
        bindings: {},
      }),
    ).toThrow(/no mTLS certificate binding named K8S_CERT/);
  });

  it("presents requests through the mTLS binding's fetch when one is configured", async () => {
    const seen: string[] = [];
    const binding = {
      fetch: (input: string | URL | Request, init?: RequestInit) => {
        seen.push(String(input));
        return fetch(input, {
          ...init,
          headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${fake.token}` },
        });
      },
    };
    const b = kubernetesBackend({
      credentials: { server: fake.url, namespace: "gateways", mtls_certificate_binding: "K8S_CERT" },
      agentPackageUrl: "https://x.example/a.tgz",
      bindings: { K8S_CERT: binding },
    });
    expect(
      await b.ensureNetwork({ projectName: "m", gatewayName: "g", region: "c", publicIp: true, tags: {} }),
    ).toEqual({
      namespace: "gateways",
    });
    expect(seen).toEqual([`${fake.url}/api/v1/namespaces/gateways`]);
  });
});
