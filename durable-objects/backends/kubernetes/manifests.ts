/**
 * @module
 * The objects of one gateway replica on Kubernetes: a Secret with the agent's bootstrap document,
 * a Deployment (one pod) running the agent, and a Service of type LoadBalancer on 80/443. All
 * carry the same name (`gp-<project>-<gateway>-<n>-<8 hex of the client token>`) and labels.
 */
import type { AgentBootstrap } from "../../../schema/agent.ts";
import { sha256Hex } from "../clouds/rest.ts";

/**
 * Node's official slim image: the agent is a Node program, installed at start from the agent
 * package (the same tarball cloud VMs install), so no Gateplane image has to be published.
 */
export const DEFAULT_AGENT_IMAGE = "node:22-bookworm-slim";
const MANAGED_BY = "app.kubernetes.io/managed-by";
const REPLICA_LABEL = "gateplane.dev/replica";
const BOOTSTRAP_DIR = "/etc/gateplane";

/** Label values: ≤ 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends. */
function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}

export function labels(tags: Record<string, string>, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(tags)) {
    const key = labelValue(k);
    if (key) out[key] = labelValue(value);
  }
  return { ...out, [MANAGED_BY]: "gateplane", [REPLICA_LABEL]: name };
}

export async function objectName(specName: string, clientToken: string): Promise<string> {
  let base = specName
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-");
  if (!/^[a-z]/.test(base)) base = `gp-${base}`;
  return `${base.slice(0, 54).replace(/-+$/, "")}-${(await sha256Hex(clientToken)).slice(0, 8)}`;
}

/** Installs the agent package, then runs it as PID 1 with the mounted bootstrap. */
export const agentCommand = (): string[] => [
  "sh",
  "-c",
  'npm install --global --no-fund --no-audit --omit=dev "$AGENT_PACKAGE_URL" && exec gateplane-agent' +
    ` --user-data ${BOOTSTRAP_DIR}/bootstrap.json --state-dir /var/lib/gateplane --host 0.0.0.0 --http-port 80 --https-port 443`,
];

export interface ReplicaObjects {
  secret: Record<string, unknown>;
  deployment: Record<string, unknown>;
  service: Record<string, unknown>;
}

export function replicaObjects(o: {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  bootstrap: AgentBootstrap;
  image: string;
  command?: string[];
  agentPackageUrl: string;
}): ReplicaObjects {
  const metadata = { name: o.name, namespace: o.namespace, labels: o.labels };
  const selector = { [REPLICA_LABEL]: o.name };
  return {
    secret: {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { ...metadata, name: `${o.name}-bootstrap` },
      type: "Opaque",
      stringData: { "bootstrap.json": JSON.stringify(o.bootstrap) },
    },
    deployment: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        replicas: 1,
        // One agent per replica: never two pods with the same one-time bootstrap secret.
        strategy: { type: "Recreate" },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: o.labels },
          spec: {
            containers: [
              {
                name: "agent",
                image: o.image,
                command: o.command ?? agentCommand(),
                env: [{ name: "AGENT_PACKAGE_URL", value: o.agentPackageUrl }],
                ports: [
                  { name: "http", containerPort: 80 },
                  { name: "https", containerPort: 443 },
                ],
                volumeMounts: [
                  { name: "bootstrap", mountPath: BOOTSTRAP_DIR, readOnly: true },
                  { name: "state", mountPath: "/var/lib/gateplane" },
                ],
              },
            ],
            volumes: [
              { name: "bootstrap", secret: { secretName: `${o.name}-bootstrap`, defaultMode: 0o400 } },
              { name: "state", emptyDir: {} },
            ],
          },
        },
      },
    },
    service: {
      apiVersion: "v1",
      kind: "Service",
      metadata,
      spec: {
        type: "LoadBalancer",
        selector,
        ports: [
          { name: "http", port: 80, targetPort: 80, protocol: "TCP" },
          { name: "https", port: 443, targetPort: 443, protocol: "TCP" },
        ],
      },
    },
  };
}
