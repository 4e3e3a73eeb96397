/**
 * @module
 * Per-project credentials of each cloud backend, as accepted by `PUT /projects/:p/backends/:type`.
 * Stored encrypted in D1; only the backend modules of the GatewayObject ever see them decrypted.
 */
import * as v from "valibot";
import type { BackendType } from "./gateway.ts";
import { mapping } from "./issues.ts";
import { text } from "./text.ts";

/** Single-line values: ids, names, URLs, tokens (a line break in a token forges HTTP headers). */
const str = (what: string) => v.pipe(text(`expected ${what}`), v.minLength(1, "must not be empty"));
/** PEM keys and certificates are the only multi-line values. */
const pem = (what: string) => v.pipe(v.string(`expected ${what}`), v.minLength(1, "must not be empty"));

export const AwsCredentials = mapping({
  access_key_id: v.pipe(str("an access key id"), v.regex(/^[A-Z0-9]{16,128}$/, "expected an AWS access key id")),
  secret_access_key: str("a secret access key"),
  session_token: v.optional(str("a session token")),
  role_arn: v.optional(
    v.pipe(str("a role ARN"), v.regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, "expected an IAM role ARN")),
  ),
  vpc_id: v.optional(str("a VPC id")),
  /** One endpoint for EC2, ELBv2 and STS (LocalStack, a proxy); AWS's regional endpoints otherwise. */
  endpoint_url: v.optional(
    v.pipe(
      str("an endpoint URL"),
      v.url("expected an http(s) URL such as https://aws-proxy.example.com"),
      v.regex(/^https?:\/\//, "expected an http(s) URL"),
    ),
  ),
  /** Per request, answer included (default 20). */
  timeout_seconds: v.optional(
    v.pipe(
      v.number("expected a number of seconds"),
      v.minValue(0.1, "must be at least 0.1"),
      v.maxValue(300, "must be at most 300"),
    ),
  ),
});

export const GcpCredentials = mapping({
  project_id: str("a GCP project id"),
  service_account_key: v.looseObject({
    type: v.literal("service_account", 'expected type: "service_account"'),
    client_email: str("client_email"),
    private_key: pem("private_key"),
    private_key_id: v.optional(str("private_key_id")),
    token_uri: v.optional(v.pipe(str("token_uri"), v.url("expected the OAuth2 token URL"))),
  }),
  network: v.optional(str("a VPC network name")),
  /** Compute Engine's REST root (Private Service Connect endpoints, tests); default https://compute.googleapis.com. */
  api_endpoint: v.optional(v.pipe(str("the Compute Engine API URL"), v.url("expected the Compute Engine API URL"))),
});

export const AzureCredentials = v.pipe(
  mapping({
    tenant_id: str("a tenant id"),
    client_id: str("a client id"),
    subscription_id: str("a subscription id"),
    client_secret: v.optional(str("a client secret")),
    client_certificate: v.optional(
      mapping({ private_key_pem: pem("a PEM private key"), certificate_pem: pem("a PEM certificate") }),
    ),
    resource_group: v.optional(str("a resource group")),
    /** Entra ID's host for sovereign clouds (and tests); default https://login.microsoftonline.com. */
    authority_host: v.optional(v.pipe(str("the authority host URL"), v.url("expected the authority host URL"))),
    /** ARM's endpoint for sovereign clouds (and tests); default https://management.azure.com. */
    resource_manager_endpoint: v.optional(
      v.pipe(str("the Resource Manager URL"), v.url("expected the Resource Manager URL")),
    ),
  }),
  v.check(
    (c) => c.client_secret !== undefined || c.client_certificate !== undefined,
    "set client_secret or client_certificate: the control plane authenticates to Azure with one of them",
  ),
);

export const KubernetesCredentials = v.pipe(
  mapping({
    server: v.pipe(str("the API server URL"), v.url("expected the API server URL")),
    token: v.optional(str("a bearer token")),
    ca_certificate_pem: v.optional(pem("a PEM CA certificate")),
    namespace: v.optional(
      v.pipe(str("a namespace"), v.regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "expected a namespace name")),
      "default",
    ),
    /** Name of a Worker mTLS certificate binding that presents the cluster's client certificate. */
    mtls_certificate_binding: v.optional(str("a binding name")),
    /** Image of the agent's pod (needs Node.js 20+ and npm); default node:22-bookworm-slim. */
    agent_image: v.optional(str("a container image")),
    /**
     * The container's command, for images with the agent preinstalled; it gets the bootstrap at
     * /etc/gateplane/bootstrap.json and must serve on 80/443. Default: npm-install the package, run it.
     */
    agent_command: v.optional(
      v.pipe(v.array(str("a command word"), "expected a list of strings"), v.minLength(1, "must not be empty")),
    ),
    load_balancer_timeout_seconds: v.optional(
      v.pipe(
        v.number("expected a number of seconds"),
        v.integer("expected whole seconds"),
        v.minValue(1),
        v.maxValue(1800),
      ),
    ),
  }),
  v.check(
    (c) => c.token !== undefined || c.mtls_certificate_binding !== undefined,
    "set token or mtls_certificate_binding: the control plane authenticates to the API server with one of them",
  ),
);

export const LocalCredentials = mapping({});

export const BACKEND_CREDENTIALS = {
  aws: AwsCredentials,
  gcp: GcpCredentials,
  azure: AzureCredentials,
  kubernetes: KubernetesCredentials,
  local: LocalCredentials,
} as const satisfies Record<BackendType, v.GenericSchema>;

export type BackendCredentials<B extends BackendType = BackendType> = v.InferOutput<(typeof BACKEND_CREDENTIALS)[B]>;

/** Backends usable without configuring credentials first. */
export const BACKENDS_WITHOUT_CREDENTIALS: readonly BackendType[] = ["local"];
