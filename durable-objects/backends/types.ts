/**
 * @module
 * The one small interface every backend implements (aws, gcp, azure, kubernetes, local). The
 * GatewayObject's reconciler calls it; every call must be idempotent because alarms repeat.
 */
import type { AgentBootstrap } from "../../schema/agent.ts";
import type { BackendType, RouterConfig } from "../../schema/gateway.ts";

export interface NetworkSpec {
  projectName: string;
  gatewayName: string;
  region: string;
  publicIp: boolean;
  tags: Record<string, string>;
}

/** What `ensureNetwork` found or created (security group, subnets, firewall rule…), opaque to callers. */
export type NetworkInfo = Record<string, unknown>;

export interface InstanceSpec {
  /** Deterministic per gateway replica, e.g. `gp-main-web-0`. */
  name: string;
  /** Idempotency key: the same token never yields a second instance (EC2 ClientToken, GCP requestId). */
  clientToken: string;
  region: string;
  instanceType: string | null;
  publicIp: boolean;
  tags: Record<string, string>;
  /** The agent's bootstrap document; each backend renders it into its own user-data format. */
  bootstrap: AgentBootstrap;
  /** The gateway's router: `type: sglang` makes VM user-data install the SGLang Model Gateway. */
  router: RouterConfig | null;
}

export interface InstanceInfo {
  instanceId: string;
  state: "pending" | "running" | "terminated";
  /** Address clients should reach (public or private IP, DNS name; `host:port` for local hosts). */
  hostname: string | null;
  region: string;
  backendData?: Record<string, unknown>;
}

export interface GatewayBackend {
  readonly type: BackendType;
  ensureNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  createInstance(spec: InstanceSpec, network: NetworkInfo): Promise<InstanceInfo>;
  /**
   * Finds the instance a create with this token made, for a create whose answer was lost (the
   * object died mid-call): EC2 filters on `client-token`, other clouds look the deterministic name up.
   */
  findInstance(spec: Pick<InstanceSpec, "clientToken" | "name" | "region">): Promise<InstanceInfo | null>;
  /** `null` when the instance no longer exists. */
  describeInstance(instanceId: string, region: string): Promise<InstanceInfo | null>;
  /** Succeeds when the instance is gone or going, including when it never existed. */
  terminateInstance(instanceId: string, region: string): Promise<void>;
  // Load balancers (ACM gateways), for backends that have them. `lb` is the `backendData` that
  // `createLoadBalancer` returned (or last reported through `progress`).
  /** Creates or finds the gateway's load balancer; `progress` persists what exists so far. */
  createLoadBalancer?(
    spec: LoadBalancerSpec,
    saved: Record<string, unknown> | null,
    progress: (data: Record<string, unknown>) => void,
  ): Promise<LoadBalancerInfo>;
  /** Removes everything `createLoadBalancer` may have made, including what `saved` never recorded. */
  deleteLoadBalancer?(spec: LoadBalancerSpec, saved: Record<string, unknown> | null): Promise<void>;
  registerReplica?(instanceId: string, region: string, lb: Record<string, unknown>): Promise<void>;
  /** Silent when the instance is not registered. */
  deregisterReplica?(instanceId: string, region: string, lb: Record<string, unknown>): Promise<void>;
}

export interface LoadBalancerSpec {
  /** Deterministic resource names derive from it. */
  gatewayId: string;
  projectName: string;
  gatewayName: string;
  region: string;
  publicIp: boolean;
  certificateArn: string;
  tags: Record<string, string>;
}

export interface LoadBalancerInfo {
  /** The load balancer's DNS name: the gateway's hostname (a CNAME target). */
  hostname: string;
  backendData: Record<string, unknown>;
}

/**
 * A backend call failed. `retryable` errors (throttling, 5xx, timeouts, unreachable endpoints) are
 * retried with back-off; others fail the replica at once with `message` as its status message.
 */
export class BackendError extends Error {
  readonly retryable: boolean;
  readonly code: string;
  constructor(code: string, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "BackendError";
    this.code = code;
    this.retryable = options.retryable;
  }
}
