import * as v from "valibot";
import { describe, expect, it } from "vitest";
import {
  AwsCredentials,
  AzureCredentials,
  BACKEND_CREDENTIALS,
  BACKENDS_WITHOUT_CREDENTIALS,
  GcpCredentials,
  KubernetesCredentials,
  LocalCredentials,
} from "./backend-credentials.ts";
import { BACKENDS, type BackendType } from "./gateway.ts";
import { formatIssue, formatPath, parseOrThrow, ValidationError } from "./issues.ts";

type Doc = Record<string, unknown>;

const AWS: Doc = {
  access_key_id: "AKIAIOSFODNN7EXAMPLE",
  secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const GCP: Doc = {
  project_id: "my-project-123",
  service_account_key: {
    type: "service_account",
    client_email: "gateplane@my-project-123.iam.gserviceaccount.com",
    private_key: "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n",
  },
};
const AZURE: Doc = {
  tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  client_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
  subscription_id: "11111111-2222-3333-4444-555555555555",
  client_secret: "s3cr3t~value",
};
const KUBERNETES: Doc = { server: "https://10.0.0.1:6443", token: "eyJhbGciOiJSUzI1NiJ9.payload.sig" };

const VALID: Record<BackendType, Doc> = { aws: AWS, gcp: GCP, azure: AZURE, kubernetes: KUBERNETES, local: {} };

function issuesOf(schema: v.GenericSchema, input: unknown) {
  try {
    parseOrThrow(schema, input);
  } catch (e) {
    if (e instanceof ValidationError) return e.issues;
    throw e;
  }
  throw new Error(`expected a ValidationError for ${JSON.stringify(input)}`);
}

describe("BACKEND_CREDENTIALS", () => {
  it("has a schema for every backend", () => {
    expect(Object.keys(BACKEND_CREDENTIALS).sort()).toEqual([...BACKENDS].sort());
  });

  it("only local works without credentials", () => {
    expect(BACKENDS_WITHOUT_CREDENTIALS).toEqual(["local"]);
  });

  it.each(BACKENDS)("accepts valid %s credentials", (backend) => {
    expect(() => parseOrThrow(BACKEND_CREDENTIALS[backend], VALID[backend])).not.toThrow();
  });

  it.each(BACKENDS)("rejects %s credentials that are not a mapping, at the top", (backend) => {
    for (const input of [null, "secret", 1, true]) {
      const issues = issuesOf(BACKEND_CREDENTIALS[backend], input);
      expect(issues.map((i) => i.path)).toEqual([[]]);
    }
  });

  // A JSON array is not a mapping: it must be refused as a whole, not read as {"0": …}.
  it("rejects a list as credentials of any backend, at the top", () => {
    const wrong: string[] = [];
    for (const backend of BACKENDS) {
      for (const input of [[], [VALID[backend]]]) {
        const result = v.safeParse(BACKEND_CREDENTIALS[backend], input);
        if (result.success || !result.issues.some((i) => (i.path ?? []).length === 0)) {
          wrong.push(`${backend} ${JSON.stringify(input)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it.each(BACKENDS)("rejects an unknown field in %s credentials", (backend) => {
    const issues = issuesOf(BACKEND_CREDENTIALS[backend], { ...VALID[backend], extra_field: "x" });
    expect(issues.map((i) => formatPath(i.path))).toEqual(["extra_field"]);
  });
});

describe.each<{
  backend: BackendType;
  schema: v.GenericSchema;
  valid: { label: string; input: Doc; expected?: Doc }[];
  invalid: { label: string; input: unknown; path: string; message?: string | RegExp }[];
}>([
  {
    backend: "aws",
    schema: AwsCredentials,
    valid: [
      { label: "access key pair", input: AWS, expected: AWS },
      {
        label: "temporary credentials",
        input: { ...AWS, access_key_id: "ASIAY34FZKBOKMUTVV7A", session_token: "FwoGZXIvYXdzE..." },
      },
      { label: "role to assume", input: { ...AWS, role_arn: "arn:aws:iam::123456789012:role/gateplane" } },
      { label: "role with a path", input: { ...AWS, role_arn: "arn:aws:iam::123456789012:role/service/gateplane" } },
      { label: "role in the aws-cn partition", input: { ...AWS, role_arn: "arn:aws-cn:iam::123456789012:role/gp" } },
      { label: "VPC", input: { ...AWS, vpc_id: "vpc-0a1b2c3d4e5f67890" } },
      { label: "128-character key id", input: { ...AWS, access_key_id: "A".repeat(128) } },
    ],
    invalid: [
      { label: "missing access_key_id", input: { secret_access_key: "x" }, path: "access_key_id" },
      { label: "missing secret_access_key", input: { access_key_id: AWS.access_key_id }, path: "secret_access_key" },
      {
        label: "lower-case key id",
        input: { ...AWS, access_key_id: "akiaiosfodnn7example" },
        path: "access_key_id",
        message: "expected an AWS access key id",
      },
      {
        label: "15-character key id",
        input: { ...AWS, access_key_id: "AKIAIOSFODNN7EX" },
        path: "access_key_id",
        message: "expected an AWS access key id",
      },
      {
        label: "129-character key id",
        input: { ...AWS, access_key_id: "A".repeat(129) },
        path: "access_key_id",
        message: "expected an AWS access key id",
      },
      {
        label: "numeric key id",
        input: { ...AWS, access_key_id: 1234567890123456 },
        path: "access_key_id",
        message: "expected an access key id",
      },
      {
        label: "empty secret",
        input: { ...AWS, secret_access_key: "" },
        path: "secret_access_key",
        message: "must not be empty",
      },
      {
        label: "empty session token",
        input: { ...AWS, session_token: "" },
        path: "session_token",
        message: "must not be empty",
      },
      {
        label: "role ARN of a user",
        input: { ...AWS, role_arn: "arn:aws:iam::123456789012:user/alice" },
        path: "role_arn",
        message: "expected an IAM role ARN",
      },
      {
        label: "role ARN with a short account",
        input: { ...AWS, role_arn: "arn:aws:iam::1234:role/gp" },
        path: "role_arn",
        message: "expected an IAM role ARN",
      },
      {
        label: "role name only",
        input: { ...AWS, role_arn: "gateplane" },
        path: "role_arn",
        message: "expected an IAM role ARN",
      },
      { label: "empty VPC id", input: { ...AWS, vpc_id: "" }, path: "vpc_id", message: "must not be empty" },
      { label: "region is not a credential", input: { ...AWS, region: "eu-west-1" }, path: "region" },
    ],
  },
  {
    backend: "gcp",
    schema: GcpCredentials,
    valid: [
      { label: "service account key", input: GCP, expected: GCP },
      {
        label: "a full key file (extra key fields kept)",
        input: {
          ...GCP,
          service_account_key: {
            ...(GCP.service_account_key as Doc),
            project_id: "my-project-123",
            private_key_id: "abc123",
            client_id: "1234567890",
            token_uri: "https://oauth2.googleapis.com/token",
          },
        },
      },
      { label: "network", input: { ...GCP, network: "gateplane-vpc" } },
    ],
    invalid: [
      { label: "missing project_id", input: { service_account_key: GCP.service_account_key }, path: "project_id" },
      {
        label: "empty project_id",
        input: { ...GCP, project_id: "" },
        path: "project_id",
        message: "must not be empty",
      },
      { label: "missing service_account_key", input: { project_id: "p" }, path: "service_account_key" },
      { label: "key as a JSON string", input: { ...GCP, service_account_key: "{}" }, path: "service_account_key" },
      {
        label: "user credentials instead of a service account",
        input: { ...GCP, service_account_key: { ...(GCP.service_account_key as Doc), type: "authorized_user" } },
        path: "service_account_key.type",
        message: 'expected type: "service_account"',
      },
      {
        label: "key without client_email",
        input: { ...GCP, service_account_key: { type: "service_account", private_key: "k" } },
        path: "service_account_key.client_email",
      },
      {
        label: "key with an empty private_key",
        input: { ...GCP, service_account_key: { ...(GCP.service_account_key as Doc), private_key: "" } },
        path: "service_account_key.private_key",
        message: "must not be empty",
      },
      {
        label: "empty token_uri",
        input: { ...GCP, service_account_key: { ...(GCP.service_account_key as Doc), token_uri: "" } },
        path: "service_account_key.token_uri",
        message: "must not be empty",
      },
      { label: "empty network", input: { ...GCP, network: "" }, path: "network", message: "must not be empty" },
    ],
  },
  {
    backend: "azure",
    schema: AzureCredentials,
    valid: [
      { label: "client secret", input: AZURE, expected: AZURE },
      {
        label: "client certificate",
        input: {
          ...AZURE,
          client_secret: undefined,
          client_certificate: {
            private_key_pem: "-----BEGIN PRIVATE KEY-----",
            certificate_pem: "-----BEGIN CERTIFICATE-----",
          },
        },
      },
      { label: "resource group", input: { ...AZURE, resource_group: "gateplane-rg" } },
    ],
    invalid: [
      { label: "missing tenant_id", input: { ...AZURE, tenant_id: undefined }, path: "tenant_id" },
      {
        label: "missing client_id",
        input: { tenant_id: "t", subscription_id: "s", client_secret: "x" },
        path: "client_id",
      },
      {
        label: "missing subscription_id",
        input: { tenant_id: "t", client_id: "c", client_secret: "x" },
        path: "subscription_id",
      },
      { label: "empty tenant_id", input: { ...AZURE, tenant_id: "" }, path: "tenant_id", message: "must not be empty" },
      {
        label: "empty client_secret",
        input: { ...AZURE, client_secret: "" },
        path: "client_secret",
        message: "must not be empty",
      },
      {
        label: "certificate without certificate_pem",
        input: { ...AZURE, client_certificate: { private_key_pem: "k" } },
        path: "client_certificate.certificate_pem",
      },
      {
        label: "certificate with an empty key",
        input: { ...AZURE, client_certificate: { private_key_pem: "", certificate_pem: "c" } },
        path: "client_certificate.private_key_pem",
        message: "must not be empty",
      },
      {
        label: "certificate with an unknown field",
        input: { ...AZURE, client_certificate: { private_key_pem: "k", certificate_pem: "c", password: "p" } },
        path: "client_certificate.password",
      },
      {
        label: "empty resource group",
        input: { ...AZURE, resource_group: "" },
        path: "resource_group",
        message: "must not be empty",
      },
    ],
  },
  {
    backend: "kubernetes",
    schema: KubernetesCredentials,
    valid: [
      {
        label: "server and token (namespace defaults)",
        input: KUBERNETES,
        expected: { ...KUBERNETES, namespace: "default" },
      },
      {
        label: "CA certificate and namespace",
        input: { ...KUBERNETES, ca_certificate_pem: "-----BEGIN CERTIFICATE-----", namespace: "gateplane" },
        expected: { ...KUBERNETES, ca_certificate_pem: "-----BEGIN CERTIFICATE-----", namespace: "gateplane" },
      },
      { label: "server by host name", input: { ...KUBERNETES, server: "https://k8s.example.com" } },
    ],
    invalid: [
      { label: "missing server", input: { token: "t" }, path: "server" },
      {
        label: "server without a scheme",
        input: { ...KUBERNETES, server: "10.0.0.1:6443" },
        path: "server",
        message: "expected the API server URL",
      },
      {
        label: "server that is not a URL",
        input: { ...KUBERNETES, server: "my cluster" },
        path: "server",
        message: "expected the API server URL",
      },
      { label: "empty server", input: { ...KUBERNETES, server: "" }, path: "server" },
      { label: "empty token", input: { ...KUBERNETES, token: "" }, path: "token", message: "must not be empty" },
      {
        label: "empty namespace",
        input: { ...KUBERNETES, namespace: "" },
        path: "namespace",
        message: "must not be empty",
      },
      {
        label: "empty CA certificate",
        input: { ...KUBERNETES, ca_certificate_pem: "" },
        path: "ca_certificate_pem",
        message: "must not be empty",
      },
      {
        label: "kubeconfig is not accepted",
        input: { ...KUBERNETES, kubeconfig: "apiVersion: v1" },
        path: "kubeconfig",
      },
    ],
  },
  {
    backend: "local",
    schema: LocalCredentials,
    valid: [{ label: "empty mapping", input: {}, expected: {} }],
    invalid: [{ label: "any field", input: { token: "x" }, path: "token" }],
  },
])("$backend credentials", ({ schema, valid, invalid }) => {
  it.each(valid)("accepts $label", ({ input, expected }) => {
    const out = parseOrThrow(schema, JSON.parse(JSON.stringify(input)));
    if (expected) expect(out).toEqual(expected);
  });

  it.each(invalid)("rejects $label at $path", ({ input, path, message }) => {
    const issues = issuesOf(schema, JSON.parse(JSON.stringify(input)));
    const atPath = issues.filter((i) => formatPath(i.path) === path);
    expect(atPath, JSON.stringify(issues.map(formatIssue))).not.toHaveLength(0);
    if (typeof message === "string") expect(atPath.map((i) => i.message)).toContain(message);
    else if (message) expect(atPath.some((i) => message.test(i.message))).toBe(true);
  });
});

describe("credential rules across fields", () => {
  // Without client_secret or client_certificate there is no way to authenticate the service principal
  // (a Worker has no managed identity or Azure CLI to fall back on).
  it("rejects azure credentials with neither client_secret nor client_certificate", () => {
    const { client_secret: _secret, ...noSecret } = AZURE;
    expect(() => parseOrThrow(AzureCredentials, noSecret)).toThrow(ValidationError);
  });

  // workerd's fetch can present a client certificate only through an mTLS certificate binding.
  it("rejects kubernetes credentials with neither token nor mtls_certificate_binding", () => {
    expect(() => parseOrThrow(KubernetesCredentials, { server: KUBERNETES.server })).toThrow(
      /set token or mtls_certificate_binding/,
    );
    expect(
      parseOrThrow(KubernetesCredentials, { server: KUBERNETES.server, mtls_certificate_binding: "K8S" }),
    ).toMatchObject({
      namespace: "default",
    });
  });

  it("names the offending field of the first issue", () => {
    try {
      parseOrThrow(AwsCredentials, { ...AWS, role_arn: "x" });
      expect.unreachable();
    } catch (e) {
      expect((e as ValidationError).field).toBe("role_arn");
      expect((e as ValidationError).message).toBe("role_arn: expected an IAM role ARN");
    }
  });
});
