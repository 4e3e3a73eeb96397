/**
 * @module
 * The `kubernetes` backend: per replica a Secret (bootstrap), a Deployment running the agent and a
 * LoadBalancer Service on 80/443 in the configured namespace, created by name (409 AlreadyExists
 * means a repeated pass: kept) and deleted together. The replica's hostname is the Service's
 * load-balancer address, an IP or a DNS name (then users create a CNAME). Instance ids are
 * `<namespace>/<name>`.
 */
import type { BackendCredentials } from "../../../schema/backend-credentials.ts";
import { sleep } from "../clouds/rest.ts";
import { BackendError, type GatewayBackend, type InstanceInfo, type InstanceSpec } from "../types.ts";
import { kubeApi, kubeError } from "./api-client.ts";
import { DEFAULT_AGENT_IMAGE, labels, objectName, replicaObjects } from "./manifests.ts";

const DEFAULT_LOAD_BALANCER_TIMEOUT_S = 300;

export interface KubernetesBackendOptions {
  credentials: BackendCredentials<"kubernetes">;
  agentPackageUrl: string;
  /** The Worker's bindings, to find the mTLS certificate binding the credentials name. */
  bindings?: Record<string, unknown>;
  timeoutMs?: number;
  pollIntervalMs?: number;
  retryDelayMs?: number;
}

interface Service {
  metadata: { name: string };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}
interface Deployment {
  metadata: { name: string };
  status?: { availableReplicas?: number };
}

function splitId(instanceId: string): { namespace: string; name: string } {
  const [namespace, name] = instanceId.split("/");
  if (!namespace || !name) {
    throw new BackendError("BadInstanceId", `Kubernetes instance id ${instanceId} is not <namespace>/<name>`, {
      retryable: false,
    });
  }
  return { namespace, name };
}

const ingressOf = (s: Service | null) => {
  const first = s?.status?.loadBalancer?.ingress?.[0];
  return first?.hostname || first?.ip || null;
};

export function kubernetesBackend(options: KubernetesBackendOptions): GatewayBackend {
  const c = options.credentials;
  let fetcher: { fetch: typeof fetch } | undefined;
  if (c.mtls_certificate_binding) {
    const binding = options.bindings?.[c.mtls_certificate_binding] as { fetch?: unknown } | undefined;
    if (typeof binding?.fetch !== "function") {
      throw new BackendError(
        "NotConfigured",
        `mtls_certificate_binding: this Worker has no mTLS certificate binding named ${c.mtls_certificate_binding} ([[mtls_certificates]] in wrangler.toml)`,
        { retryable: false },
      );
    }
    fetcher = binding as { fetch: typeof fetch };
  }
  const api = kubeApi({
    server: c.server,
    token: c.token,
    fetcher,
    hasCustomCa: c.ca_certificate_pem !== undefined,
    timeoutMs: options.timeoutMs ?? 20_000,
    retryDelayMs: options.retryDelayMs ?? 500,
  });
  const ns = c.namespace;
  const image = c.agent_image ?? DEFAULT_AGENT_IMAGE;
  const lbTimeoutMs = (c.load_balancer_timeout_seconds ?? DEFAULT_LOAD_BALANCER_TIMEOUT_S) * 1000;
  const pollMs = options.pollIntervalMs ?? 2_000;
  const paths = (namespace: string, name: string) => ({
    secret: `/api/v1/namespaces/${namespace}/secrets/${name}-bootstrap`,
    deployment: `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
    service: `/api/v1/namespaces/${namespace}/services/${name}`,
  });

  async function read<T>(path: string): Promise<T | null> {
    const res = await api.call("GET", path);
    return res.status === 404 ? null : (res.json as T);
  }

  async function create(collection: string, body: unknown): Promise<void> {
    const res = await api.call("POST", collection, body);
    // 409 AlreadyExists: made by an earlier pass of this same replica (the name embeds its token).
    if (res.status === 404) throw kubeError(res);
  }

  async function remove(namespace: string, name: string): Promise<void> {
    const p = paths(namespace, name);
    // Service first: the load balancer is the part that costs money and holds an address.
    for (const path of [p.service, p.deployment, p.secret]) {
      await api.call("DELETE", `${path}?propagationPolicy=Background`);
    }
  }

  async function info(namespace: string, name: string, region: string): Promise<InstanceInfo | null> {
    const p = paths(namespace, name);
    const deployment = await read<Deployment>(p.deployment);
    const service = deployment ? await read<Service>(p.service) : null;
    if (!deployment || !service) return null;
    return {
      instanceId: `${namespace}/${name}`,
      state: (deployment.status?.availableReplicas ?? 0) >= 1 ? "running" : "pending",
      hostname: ingressOf(service),
      region,
      backendData: { namespace },
    };
  }

  return {
    type: "kubernetes",

    async ensureNetwork() {
      // Checks access and the namespace early, with the API server's own words.
      const res = await api.call("GET", `/api/v1/namespaces/${ns}`);
      if (res.status === 404) {
        throw new BackendError("NotFound", `Kubernetes Error: NotFound: namespace ${ns} does not exist`, {
          retryable: false,
        });
      }
      return { namespace: ns };
    },

    async createInstance(spec: InstanceSpec): Promise<InstanceInfo> {
      const name = await objectName(spec.name, spec.clientToken);
      const objects = replicaObjects({
        name,
        namespace: ns,
        labels: labels(spec.tags, name),
        bootstrap: spec.bootstrap,
        image,
        command: c.agent_command,
        agentPackageUrl: options.agentPackageUrl,
      });
      await create(`/api/v1/namespaces/${ns}/secrets`, objects.secret);
      await create(`/apis/apps/v1/namespaces/${ns}/deployments`, objects.deployment);
      await create(`/api/v1/namespaces/${ns}/services`, objects.service);

      const deadline = Date.now() + lbTimeoutMs;
      for (;;) {
        const current = await info(ns, name, spec.region);
        if (current?.hostname) return current;
        if (Date.now() >= deadline) break;
        await sleep(Math.min(pollMs, Math.max(deadline - Date.now(), 0)));
      }
      await remove(ns, name);
      throw new BackendError(
        "NoLoadBalancer",
        `Failed to get gateway replica hostname: Service ${ns}/${name} got no load-balancer address within ${lbTimeoutMs / 1000} s. Ensure the Kubernetes cluster supports LoadBalancer services.`,
        { retryable: false },
      );
    },

    async findInstance(spec) {
      return info(ns, await objectName(spec.name, spec.clientToken), spec.region);
    },

    async describeInstance(instanceId, region) {
      const { namespace, name } = splitId(instanceId);
      return info(namespace, name, region);
    },

    async terminateInstance(instanceId) {
      const { namespace, name } = splitId(instanceId);
      await remove(namespace, name);
    },
  };
}
