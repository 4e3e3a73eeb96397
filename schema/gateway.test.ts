import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  BACKENDS,
  type BackendType,
  diffConfigurations,
  type GatewayConfiguration,
  IN_PLACE_FIELDS,
  interpolateDomain,
  isInPlace,
  MAX_GATEWAY_REPLICAS,
  parseGatewayConfiguration,
  ROUTER_POLICIES,
} from "./gateway.ts";
import { type FieldIssue, formatIssue, formatPath, ValidationError } from "./issues.ts";
import { DEFAULT_OBSERVABILITY } from "./observability.ts";
import { parseServiceConfiguration } from "./service.ts";

type Doc = Record<string, unknown>;

/** The smallest valid cloud configuration; every table row overrides some of it. */
const BASE: Doc = { type: "gateway", backend: "aws", region: "eu-west-1", domain: "example.com" };
const LOCAL: Doc = { type: "gateway", backend: "local" };
const ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0f3c8f4e-1a2b-4c5d-9e8f-0123456789ab";

const withBase = (overrides: Doc): Doc => ({ ...BASE, ...overrides });
/** BASE (with overrides) minus `key`: a YAML document has a field or not, never `undefined`. */
function without(key: string, overrides: Doc = {}): Doc {
  const { [key]: _omitted, ...rest } = withBase(overrides);
  return rest;
}

/** The issues `parseGatewayConfiguration` reports for `input`; fails the test when it accepts it. */
function issuesOf(input: unknown): FieldIssue[] {
  try {
    parseGatewayConfiguration(input);
  } catch (e) {
    if (e instanceof ValidationError) return e.issues;
    throw e;
  }
  throw new Error(`expected a ValidationError for ${JSON.stringify(input)}`);
}

/** Asserts that `input` is rejected with an issue at `path` whose message matches, and at no other path. */
function expectRejected(input: unknown, path: string, message: string | RegExp): void {
  const issues = issuesOf(input);
  const rendered = issues.map(formatIssue);
  const atPath = issues.filter((i) => formatPath(i.path) === path);
  expect(atPath, `no issue at ${path}; got ${JSON.stringify(rendered)}`).not.toHaveLength(0);
  if (typeof message === "string") {
    expect(atPath.map((i) => i.message)).toContain(message);
  } else {
    expect(
      atPath.some((i) => message.test(i.message)),
      `${JSON.stringify(rendered)} ~ ${message}`,
    ).toBe(true);
  }
  expect(issues.map((i) => formatPath(i.path)).filter((p) => p !== path)).toEqual([]);
}

describe("parseGatewayConfiguration: defaults", () => {
  it("fills every default of a minimal cloud configuration", () => {
    expect(parseGatewayConfiguration({ type: "gateway", backend: "aws", region: "eu-west-1" })).toEqual({
      type: "gateway",
      name: null,
      default: null,
      backend: "aws",
      region: "eu-west-1",
      instance_type: null,
      domain: null,
      public_ip: true,
      certificate: { type: "lets-encrypt" },
      replicas: 1,
      tags: null,
      router: null,
      observability: DEFAULT_OBSERVABILITY,
    } satisfies GatewayConfiguration);
  });

  it("fills every default of a minimal local configuration", () => {
    expect(parseGatewayConfiguration(LOCAL)).toEqual({
      type: "gateway",
      name: null,
      default: null,
      backend: "local",
      region: "local",
      instance_type: null,
      domain: null,
      public_ip: true,
      certificate: null,
      replicas: 1,
      tags: null,
      router: null,
      observability: DEFAULT_OBSERVABILITY,
    } satisfies GatewayConfiguration);
  });

  it.each<{ label: string; input: Doc; field: keyof GatewayConfiguration; expected: unknown }>([
    { label: "name is null", input: BASE, field: "name", expected: null },
    { label: "name: null stays null", input: withBase({ name: null }), field: "name", expected: null },
    { label: "default is null", input: BASE, field: "default", expected: null },
    { label: "default: null stays null", input: withBase({ default: null }), field: "default", expected: null },
    { label: "region is local for local", input: LOCAL, field: "region", expected: "local" },
    { label: "region: null is local for local", input: { ...LOCAL, region: null }, field: "region", expected: "local" },
    { label: "instance_type is null", input: BASE, field: "instance_type", expected: null },
    { label: "domain is null", input: without("domain"), field: "domain", expected: null },
    { label: "domain: null stays null", input: withBase({ domain: null }), field: "domain", expected: null },
    { label: "public_ip is true", input: BASE, field: "public_ip", expected: true },
    {
      label: "certificate is lets-encrypt (aws)",
      input: BASE,
      field: "certificate",
      expected: { type: "lets-encrypt" },
    },
    {
      label: "certificate is lets-encrypt (gcp)",
      input: withBase({ backend: "gcp" }),
      field: "certificate",
      expected: { type: "lets-encrypt" },
    },
    {
      label: "certificate is lets-encrypt (azure)",
      input: withBase({ backend: "azure" }),
      field: "certificate",
      expected: { type: "lets-encrypt" },
    },
    {
      label: "certificate is lets-encrypt (kubernetes)",
      input: withBase({ backend: "kubernetes" }),
      field: "certificate",
      expected: { type: "lets-encrypt" },
    },
    { label: "certificate is null for local", input: LOCAL, field: "certificate", expected: null },
    { label: "replicas is 1", input: BASE, field: "replicas", expected: 1 },
    { label: "replicas: null is 1", input: withBase({ replicas: null }), field: "replicas", expected: 1 },
    { label: "tags is null", input: BASE, field: "tags", expected: null },
    { label: "router is null", input: BASE, field: "router", expected: null },
    {
      label: "router policy is cache_aware, with SGLang's cache_aware defaults",
      input: withBase({ router: { type: "sglang" } }),
      field: "router",
      expected: {
        type: "sglang",
        policy: "cache_aware",
        cache_threshold: 0.3,
        balance_abs_threshold: 64,
        balance_rel_threshold: 1.5,
        eviction_interval: 120,
        max_tree_size: 2 ** 26,
      },
    },
    {
      label: "router of another policy has no cache_aware options",
      input: withBase({ router: { type: "sglang", policy: "round_robin" } }),
      field: "router",
      expected: { type: "sglang", policy: "round_robin" },
    },
  ])("$label", ({ input, field, expected }) => {
    expect(parseGatewayConfiguration(input)[field]).toEqual(expected);
  });

  it("does not mutate its input", () => {
    const input = withBase({ domain: "*.Example.com", router: { type: "sglang" } });
    const copy = structuredClone(input);
    parseGatewayConfiguration(input);
    expect(input).toEqual(copy);
  });
});

describe("parseGatewayConfiguration: valid values", () => {
  it.each<{ label: string; input: Doc; expected: Partial<GatewayConfiguration> }>([
    // name
    {
      label: "name example-gateway",
      input: withBase({ name: "example-gateway" }),
      expected: { name: "example-gateway" },
    },
    { label: "name of 2 characters", input: withBase({ name: "ab" }), expected: { name: "ab" } },
    {
      label: "name of 41 characters",
      input: withBase({ name: `a${"b".repeat(40)}` }),
      expected: { name: `a${"b".repeat(40)}` },
    },
    { label: "name with digits and hyphens", input: withBase({ name: "gw-2-eu" }), expected: { name: "gw-2-eu" } },
    { label: "name ending with a hyphen", input: withBase({ name: "gw-" }), expected: { name: "gw-" } },
    // default
    { label: "default: true", input: withBase({ default: true }), expected: { default: true } },
    { label: "default: false", input: withBase({ default: false }), expected: { default: false } },
    // backend and region
    { label: "backend aws", input: withBase({ backend: "aws" }), expected: { backend: "aws", region: "eu-west-1" } },
    {
      label: "backend gcp",
      input: withBase({ backend: "gcp", region: "europe-west4" }),
      expected: { backend: "gcp", region: "europe-west4" },
    },
    {
      label: "backend azure",
      input: withBase({ backend: "azure", region: "westeurope" }),
      expected: { backend: "azure", region: "westeurope" },
    },
    {
      label: "backend kubernetes",
      input: withBase({ backend: "kubernetes", region: "cluster-1" }),
      expected: { backend: "kubernetes", region: "cluster-1" },
    },
    { label: "backend local", input: LOCAL, expected: { backend: "local", region: "local" } },
    { label: "local with an explicit region", input: { ...LOCAL, region: "laptop" }, expected: { region: "laptop" } },
    // instance_type
    {
      label: "instance_type on aws",
      input: withBase({ instance_type: "t3.small" }),
      expected: { instance_type: "t3.small" },
    },
    {
      label: "instance_type on gcp",
      input: withBase({ backend: "gcp", instance_type: "e2-small" }),
      expected: { instance_type: "e2-small" },
    },
    { label: "instance_type: null", input: withBase({ instance_type: null }), expected: { instance_type: null } },
    // domain
    { label: "domain example.com", input: withBase({ domain: "example.com" }), expected: { domain: "example.com" } },
    {
      label: "domain with a leading *. stripped",
      input: withBase({ domain: "*.example.com" }),
      expected: { domain: "example.com" },
    },
    {
      label: "domain lower-cased",
      input: withBase({ domain: "Gateway.EXAMPLE.com" }),
      expected: { domain: "gateway.example.com" },
    },
    {
      label: "domain trimmed, stripped, lower-cased",
      input: withBase({ domain: "  *.Example.COM " }),
      expected: { domain: "example.com" },
    },
    { label: "single-label domain", input: { ...LOCAL, domain: "localhost" }, expected: { domain: "localhost" } },
    {
      label: "domain with hyphens and digits",
      input: withBase({ domain: "gw-1.my-org2.io" }),
      expected: { domain: "gw-1.my-org2.io" },
    },
    { label: "punycode domain", input: withBase({ domain: "xn--r8jz45g.jp" }), expected: { domain: "xn--r8jz45g.jp" } },
    {
      label: "domain label of 63 characters",
      input: withBase({ domain: `${"a".repeat(63)}.com` }),
      expected: { domain: `${"a".repeat(63)}.com` },
    },
    {
      label: `domain with \${{ run.project_name }} kept`,
      input: withBase({ domain: `\${{ run.project_name }}.example.com` }),
      expected: { domain: `\${{ run.project_name }}.example.com` },
    },
    {
      label: `domain with \${{run.project_name}} (no spaces) kept`,
      input: withBase({ domain: `*.\${{run.project_name}}.example.com` }),
      expected: { domain: `\${{run.project_name}}.example.com` },
    },
    // public_ip
    { label: "public_ip: true", input: withBase({ public_ip: true }), expected: { public_ip: true } },
    {
      label: "public_ip: false on aws",
      input: withBase({ public_ip: false, certificate: null }),
      expected: { public_ip: false, certificate: null },
    },
    {
      label: "public_ip: false on gcp",
      input: withBase({ backend: "gcp", public_ip: false, certificate: null }),
      expected: { public_ip: false },
    },
    {
      label: "public_ip: false on aws with acm",
      input: withBase({ public_ip: false, certificate: { type: "acm", arn: ARN } }),
      expected: { public_ip: false, certificate: { type: "acm", arn: ARN } },
    },
    // certificate
    { label: "certificate: null", input: withBase({ certificate: null }), expected: { certificate: null } },
    {
      label: "certificate lets-encrypt",
      input: withBase({ certificate: { type: "lets-encrypt" } }),
      expected: { certificate: { type: "lets-encrypt" } },
    },
    {
      label: "certificate lets-encrypt on local",
      input: { ...LOCAL, certificate: { type: "lets-encrypt" } },
      expected: { certificate: { type: "lets-encrypt" } },
    },
    {
      label: "certificate acm on aws",
      input: withBase({ certificate: { type: "acm", arn: ARN } }),
      expected: { certificate: { type: "acm", arn: ARN } },
    },
    {
      label: "certificate acm in the aws-us-gov partition",
      input: withBase({
        certificate: { type: "acm", arn: "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc-123" },
      }),
      expected: {
        certificate: { type: "acm", arn: "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc-123" },
      },
    },
    // replicas
    { label: "replicas: 1", input: withBase({ replicas: 1 }), expected: { replicas: 1 } },
    {
      label: "replicas: 2 without certificate",
      input: withBase({ replicas: 2, certificate: null }),
      expected: { replicas: 2 },
    },
    {
      label: "replicas: 9 without certificate",
      input: withBase({ replicas: MAX_GATEWAY_REPLICAS, certificate: null }),
      expected: { replicas: 9 },
    },
    {
      label: "replicas: 3 with acm on aws",
      input: withBase({ replicas: 3, certificate: { type: "acm", arn: ARN } }),
      expected: { replicas: 3 },
    },
    {
      label: "replicas: 2.0 (an integer)",
      input: withBase({ replicas: 2.0, certificate: null }),
      expected: { replicas: 2 },
    },
    // tags
    { label: "tags: {}", input: withBase({ tags: {} }), expected: { tags: {} } },
    {
      label: "tags with every allowed character",
      input: withBase({ tags: { "team_name-1": "ML infra: a.b/c=d_e-f+g@h" } }),
      expected: { tags: { "team_name-1": "ML infra: a.b/c=d_e-f+g@h" } },
    },
    {
      label: "tag key of 60 characters",
      input: withBase({ tags: { ["k".repeat(60)]: "v" } }),
      expected: { tags: { ["k".repeat(60)]: "v" } },
    },
    { label: "tag key of 1 character", input: withBase({ tags: { k: "v" } }), expected: { tags: { k: "v" } } },
    { label: "empty tag value", input: withBase({ tags: { k: "" } }), expected: { tags: { k: "" } } },
    {
      label: "tag value of 256 characters",
      input: withBase({ tags: { k: "v".repeat(256) } }),
      expected: { tags: { k: "v".repeat(256) } },
    },
    { label: "tags: null", input: withBase({ tags: null }), expected: { tags: null } },
    // router
    { label: "router: null", input: withBase({ router: null }), expected: { router: null } },
    ...ROUTER_POLICIES.map((policy) => ({
      label: `router policy ${policy}`,
      input: withBase({ router: { type: "sglang", policy } }),
      expected: { router: { type: "sglang" as const, policy } },
    })),
  ])("$label", ({ input, expected }) => {
    expect(parseGatewayConfiguration(input)).toMatchObject(expected);
  });
});

describe("parseGatewayConfiguration: invalid values", () => {
  const backends = BACKENDS.join(", ");
  it.each<{ label: string; input: unknown; path: string; message: string | RegExp }>([
    // type
    {
      label: "type: service",
      input: withBase({ type: "service" }),
      path: "type",
      message: 'expected one of gateway, got "service"',
    },
    {
      label: "type: Gateway",
      input: withBase({ type: "Gateway" }),
      path: "type",
      message: 'expected one of gateway, got "Gateway"',
    },
    // name
    { label: "name of 1 character", input: withBase({ name: "a" }), path: "name", message: /lowercase letter.*2–41/ },
    { label: "name of 42 characters", input: withBase({ name: `a${"b".repeat(41)}` }), path: "name", message: /2–41/ },
    { label: "uppercase name", input: withBase({ name: "Example-gateway" }), path: "name", message: /lowercase/ },
    {
      label: "name with a leading digit",
      input: withBase({ name: "1gateway" }),
      path: "name",
      message: /start with a lowercase letter/,
    },
    {
      label: "name with a leading hyphen",
      input: withBase({ name: "-gateway" }),
      path: "name",
      message: /start with a lowercase letter/,
    },
    {
      label: "name with an underscore",
      input: withBase({ name: "my_gateway" }),
      path: "name",
      message: /lowercase letters, digits or hyphens/,
    },
    {
      label: "name with a dot",
      input: withBase({ name: "my.gateway" }),
      path: "name",
      message: /lowercase letters, digits or hyphens/,
    },
    { label: "empty name", input: withBase({ name: "" }), path: "name", message: /2–41/ },
    { label: "name: 42", input: withBase({ name: 42 }), path: "name", message: "expected a string, got 42" },
    // default
    {
      label: 'default: "yes"',
      input: withBase({ default: "yes" }),
      path: "default",
      message: 'expected true or false, got "yes"',
    },
    { label: "default: 1", input: withBase({ default: 1 }), path: "default", message: "expected true or false, got 1" },
    // backend
    {
      label: "backend runpod",
      input: withBase({ backend: "runpod" }),
      path: "backend",
      message: `expected one of ${backends}, got "runpod"`,
    },
    {
      label: "backend AWS",
      input: withBase({ backend: "AWS" }),
      path: "backend",
      message: `expected one of ${backends}, got "AWS"`,
    },
    {
      label: "backend: null",
      input: withBase({ backend: null }),
      path: "backend",
      message: `expected one of ${backends}, got null`,
    },
    {
      label: "a long backend name is cut at 40 characters",
      input: withBase({ backend: "b".repeat(50) }),
      path: "backend",
      message: `expected one of ${backends}, got "${"b".repeat(40)}…"`,
    },
    // region
    {
      label: "aws without region",
      input: without("region"),
      path: "region",
      message: "required for the aws backend",
    },
    {
      label: "gcp without region",
      input: without("region", { backend: "gcp" }),
      path: "region",
      message: "required for the gcp backend",
    },
    {
      label: "kubernetes with region: null",
      input: withBase({ backend: "kubernetes", region: null }),
      path: "region",
      message: "required for the kubernetes backend",
    },
    { label: "empty region", input: withBase({ region: "" }), path: "region", message: "must not be empty" },
    { label: "region: 1", input: withBase({ region: 1 }), path: "region", message: "expected a string, got 1" },
    // instance_type
    {
      label: "empty instance_type",
      input: withBase({ instance_type: "" }),
      path: "instance_type",
      message: "must not be empty",
    },
    {
      label: "instance_type: 2",
      input: withBase({ instance_type: 2 }),
      path: "instance_type",
      message: "expected a string, got 2",
    },
    // domain
    { label: "domain: 1", input: withBase({ domain: 1 }), path: "domain", message: "expected a string, got 1" },
    {
      label: "empty domain",
      input: withBase({ domain: "" }),
      path: "domain",
      message: 'expected a domain name such as example.com, got ""',
    },
    {
      label: "domain *.",
      input: withBase({ domain: "*." }),
      path: "domain",
      message: 'expected a domain name such as example.com, got "*."',
    },
    { label: "domain *", input: withBase({ domain: "*" }), path: "domain", message: /expected a domain name/ },
    {
      label: "wildcard inside the domain",
      input: withBase({ domain: "a.*.example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with a trailing dot",
      input: withBase({ domain: "example.com." }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with a leading hyphen",
      input: withBase({ domain: "-a.example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain label ending with a hyphen",
      input: withBase({ domain: "a-.example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with an underscore",
      input: withBase({ domain: "my_gw.example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with a space",
      input: withBase({ domain: "my gw.example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain as a URL",
      input: withBase({ domain: "https://example.com" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with a port",
      input: withBase({ domain: "example.com:8443" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain with a path",
      input: withBase({ domain: "example.com/x" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "non-ASCII domain",
      input: withBase({ domain: "例え.jp" }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain label of 64 characters",
      input: withBase({ domain: `${"a".repeat(64)}.com` }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: "domain longer than 253 characters",
      input: withBase({ domain: `${Array.from({ length: 4 }, () => "a".repeat(63)).join(".")}.com` }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: `domain with \${{ run.name }}`,
      input: withBase({ domain: `\${{ run.name }}.example.com` }),
      path: "domain",
      message: `cannot interpolate \${{ run.name }}: only \${{ run.project_name }} is supported`,
    },
    {
      label: `domain with \${{ env.foo }}`,
      input: withBase({ domain: `x.\${{ env.foo }}.example.com` }),
      path: "domain",
      message: /^cannot interpolate \$\{\{ env\.foo \}\}/,
    },
    {
      label: `domain with \${{ project_name }}`,
      input: withBase({ domain: `\${{ project_name }}.example.com` }),
      path: "domain",
      message: /^cannot interpolate/,
    },
    {
      label: `domain with an unclosed \${{`,
      input: withBase({ domain: `\${{ run.project_name .example.com` }),
      path: "domain",
      message: /expected a domain name/,
    },
    {
      label: `domain where \${{ run.project_name }} makes an invalid name`,
      input: withBase({ domain: `\${{ run.project_name }}_x.example.com` }),
      path: "domain",
      message: /expected a domain name/,
    },
    // public_ip
    {
      label: "public_ip: null",
      input: withBase({ public_ip: null }),
      path: "public_ip",
      message: "expected true or false, got null",
    },
    {
      label: 'public_ip: "false"',
      input: withBase({ public_ip: "false" }),
      path: "public_ip",
      message: 'expected true or false, got "false"',
    },
    // certificate
    {
      label: "certificate as a string",
      input: withBase({ certificate: "lets-encrypt" }),
      path: "certificate",
      message: 'expected a mapping or null, got "lets-encrypt"',
    },
    {
      label: "certificate of an unknown type",
      input: withBase({ certificate: { type: "self-signed" } }),
      path: "certificate.type",
      message: 'expected one of lets-encrypt, acm, got "self-signed"',
    },
    {
      label: "certificate without type",
      input: withBase({ certificate: {} }),
      path: "certificate.type",
      message: "expected one of lets-encrypt, acm, got undefined",
    },
    {
      label: "acm certificate with a malformed arn",
      input: withBase({ certificate: { type: "acm", arn: "my-cert" } }),
      path: "certificate.arn",
      message: "expected an ACM certificate ARN",
    },
    {
      label: "acm certificate with an IAM arn",
      input: withBase({ certificate: { type: "acm", arn: "arn:aws:iam::123456789012:server-certificate/x" } }),
      path: "certificate.arn",
      message: "expected an ACM certificate ARN",
    },
    {
      label: "acm certificate with a numeric arn",
      input: withBase({ certificate: { type: "acm", arn: 1 } }),
      path: "certificate.arn",
      message: "expected a string, got 1",
    },
    // replicas
    {
      label: "replicas: 0",
      input: withBase({ replicas: 0, certificate: null }),
      path: "replicas",
      message: "must be at least 1",
    },
    {
      label: "replicas: -1",
      input: withBase({ replicas: -1, certificate: null }),
      path: "replicas",
      message: "must be at least 1",
    },
    {
      label: "replicas: 10",
      input: withBase({ replicas: 10, certificate: null }),
      path: "replicas",
      message: "at most 9 gateway replicas are supported",
    },
    {
      label: "replicas: 1.5",
      input: withBase({ replicas: 1.5, certificate: null }),
      path: "replicas",
      message: "expected an integer",
    },
    {
      label: 'replicas: "2"',
      input: withBase({ replicas: "2", certificate: null }),
      path: "replicas",
      message: 'expected an integer, got "2"',
    },
    {
      label: "replicas: NaN",
      input: withBase({ replicas: Number.NaN }),
      path: "replicas",
      message: "expected an integer, got NaN",
    },
    // tags
    {
      label: "tags as a string",
      input: withBase({ tags: "team=ml" }),
      path: "tags",
      message: 'expected a mapping of tag names to values, got "team=ml"',
    },
    {
      label: "tag key with a space",
      input: withBase({ tags: { "my team": "ml" } }),
      path: "tags.my team",
      message: /^tag keys are 1–60/,
    },
    {
      label: "tag key with a dot",
      input: withBase({ tags: { "team.name": "ml" } }),
      path: "tags.team.name",
      message: /^tag keys are/,
    },
    {
      label: "tag key of 61 characters",
      input: withBase({ tags: { ["k".repeat(61)]: "v" } }),
      path: `tags.${"k".repeat(61)}`,
      message: /^tag keys are/,
    },
    { label: "empty tag key", input: withBase({ tags: { "": "v" } }), path: "tags.", message: /^tag keys are/ },
    {
      label: "numeric tag value",
      input: withBase({ tags: { team: 1 } }),
      path: "tags.team",
      message: "expected a string, got 1",
    },
    {
      label: "tag value with a comma",
      input: withBase({ tags: { team: "ml,infra" } }),
      path: "tags.team",
      message: /^tag values are at most 256/,
    },
    {
      label: "tag value with a quote",
      input: withBase({ tags: { team: 'm"l' } }),
      path: "tags.team",
      message: /^tag values are/,
    },
    {
      label: "tag value of 257 characters",
      input: withBase({ tags: { team: "v".repeat(257) } }),
      path: "tags.team",
      message: /^tag values are/,
    },
    // router
    {
      label: "router as a string",
      input: withBase({ router: "sglang" }),
      path: "router",
      message: 'expected a mapping, got "sglang"',
    },
    {
      label: "router of an unknown type",
      input: withBase({ router: { type: "vllm" } }),
      path: "router.type",
      message: 'expected one of sglang, got "vllm"',
    },
    {
      label: "router with an unknown policy",
      input: withBase({ router: { type: "sglang", policy: "x" } }),
      path: "router.policy",
      message: 'expected one of cache_aware, power_of_two, random, round_robin, least_load, prefix_load, got "x"',
    },
    {
      label: "router with policy: null",
      input: withBase({ router: { type: "sglang", policy: null } }),
      path: "router.policy",
      message: "expected one of cache_aware, power_of_two, random, round_robin, least_load, prefix_load, got null",
    },
  ])("$label → $path", ({ input, path, message }) => {
    expectRejected(input, path, message);
  });

  // Missing required keys: the message must say the field is required, not describe a mapping.
  it.each<{ label: string; input: Doc; path: string }>([
    { label: "type", input: without("type"), path: "type" },
    { label: "backend", input: without("backend"), path: "backend" },
    { label: "router.type", input: withBase({ router: { policy: "random" } }), path: "router.type" },
    { label: "certificate.arn of acm", input: withBase({ certificate: { type: "acm" } }), path: "certificate.arn" },
  ])("missing $label is reported as required", ({ input, path }) => {
    expectRejected(input, path, /required|missing/);
  });

  // YAML sequences are not mappings: a list must not pass where a mapping is expected.
  it.each<{ label: string; input: Doc; path: string; message: string | RegExp }>([
    {
      label: "tags",
      input: withBase({ tags: ["team"] }),
      path: "tags",
      message: "expected a mapping of tag names to values, got a list",
    },
    { label: "empty tags list", input: withBase({ tags: [] }), path: "tags", message: /got a list/ },
    {
      label: "certificate",
      input: withBase({ certificate: [] }),
      path: "certificate",
      message: "expected a mapping or null, got a list",
    },
    {
      label: "router",
      input: withBase({ router: ["sglang"] }),
      path: "router",
      message: "expected a mapping, got a list",
    },
  ])("a list as $label is rejected", ({ input, path, message }) => {
    expectRejected(input, path, message);
  });

  it(`is case-sensitive about \${{ run.project_name }} (dstack rejects \${{ RUN.PROJECT_NAME }})`, () => {
    expectRejected(
      withBase({ domain: `\${{ RUN.PROJECT_NAME }}.example.com` }),
      "domain",
      /^cannot interpolate \$\{\{ RUN/,
    );
  });
});

describe("parseGatewayConfiguration: unknown fields", () => {
  it.each<{ label: string; input: Doc; path: string }>([
    { label: "top-level foo", input: withBase({ foo: 1 }), path: "foo" },
    { label: "misspelt public-ip", input: withBase({ "public-ip": false }), path: "public-ip" },
    { label: "capitalised Name", input: withBase({ Name: "gw" }), path: "Name" },
    { label: "API-only wildcard_domain", input: withBase({ wildcard_domain: "example.com" }), path: "wildcard_domain" },
    { label: "router.foo", input: withBase({ router: { type: "sglang", foo: 1 } }), path: "router.foo" },
    {
      label: "router.pd_disaggregation (service-only)",
      input: withBase({ router: { type: "sglang", pd_disaggregation: true } }),
      path: "router.pd_disaggregation",
    },
    {
      label: "certificate.arn on lets-encrypt",
      input: withBase({ certificate: { type: "lets-encrypt", arn: ARN } }),
      path: "certificate.arn",
    },
    {
      label: "certificate.region on acm",
      input: withBase({ certificate: { type: "acm", arn: ARN, region: "x" } }),
      path: "certificate.region",
    },
  ])("$label", ({ input, path }) => {
    expectRejected(input, path, "unknown field");
  });

  it("renders as `router.foo: unknown field`", () => {
    expect(() => parseGatewayConfiguration(withBase({ router: { type: "sglang", foo: 1 } }))).toThrow(
      "router.foo: unknown field",
    );
  });

  it("reports each unknown field", () => {
    expect(issuesOf(withBase({ foo: 1, bar: 2 })).map(formatIssue)).toEqual([
      "foo: unknown field",
      "bar: unknown field",
    ]);
  });
});

describe("router: cache_aware options (gateway and service)", () => {
  const SERVICE: Doc = { type: "service", name: "llama" };
  const parsers = [
    { kind: "gateway", parse: (router: unknown) => parseGatewayConfiguration(withBase({ router })).router },
    { kind: "service", parse: (router: unknown) => parseServiceConfiguration({ ...SERVICE, router }).router },
  ];

  it.each(parsers)("$kind: keeps the values given and defaults the rest", ({ parse }) => {
    expect(parse({ type: "sglang", cache_threshold: 0.5, balance_abs_threshold: 0, max_tree_size: 1000 })).toEqual({
      type: "sglang",
      policy: "cache_aware",
      cache_threshold: 0.5,
      balance_abs_threshold: 0,
      balance_rel_threshold: 1.5,
      eviction_interval: 120,
      max_tree_size: 1000,
    });
  });

  it.each(parsers)("$kind: the bounds are accepted", ({ parse }) => {
    expect(
      parse({ type: "sglang", cache_threshold: 1, balance_rel_threshold: 1, eviction_interval: 0, max_tree_size: 1 }),
    ).toMatchObject({ cache_threshold: 1, balance_rel_threshold: 1, eviction_interval: 0, max_tree_size: 1 });
    expect(parse({ type: "sglang", cache_threshold: 0, max_tree_size: 2 ** 30 })).toMatchObject({
      cache_threshold: 0,
      max_tree_size: 2 ** 30,
    });
  });

  const invalid: { label: string; router: Doc; path: string; message: string }[] = [
    {
      label: "cache_threshold above 1",
      router: { type: "sglang", cache_threshold: 1.5 },
      path: "router.cache_threshold",
      message: "must be between 0 and 1",
    },
    {
      label: "cache_threshold as a string",
      router: { type: "sglang", cache_threshold: "0.3" },
      path: "router.cache_threshold",
      message: 'expected a number between 0 and 1, got "0.3"',
    },
    {
      label: "negative balance_abs_threshold",
      router: { type: "sglang", balance_abs_threshold: -1 },
      path: "router.balance_abs_threshold",
      message: `must be a whole number of requests from 0 to ${2 ** 31 - 1}`,
    },
    {
      label: "fractional balance_abs_threshold",
      router: { type: "sglang", balance_abs_threshold: 1.5 },
      path: "router.balance_abs_threshold",
      message: "expected an integer, got 1.5",
    },
    {
      label: "balance_rel_threshold below 1",
      router: { type: "sglang", balance_rel_threshold: 0.5 },
      path: "router.balance_rel_threshold",
      message: "must be between 1 and 1000000",
    },
    {
      label: "eviction_interval of a day and a second",
      router: { type: "sglang", eviction_interval: 86_401 },
      path: "router.eviction_interval",
      message: "must be between 0 (no eviction) and 86400 seconds",
    },
    {
      label: "max_tree_size 0",
      router: { type: "sglang", max_tree_size: 0 },
      path: "router.max_tree_size",
      message: `must be between 1 and ${2 ** 30} characters`,
    },
    {
      label: "a tunable with another policy",
      router: { type: "sglang", policy: "round_robin", cache_threshold: 0.5 },
      path: "router.cache_threshold",
      message: 'applies to policy cache_aware only (policy is "round_robin")',
    },
  ];

  it.each(invalid)("gateway: $label → $path", ({ router, path, message }) => {
    expectRejected(withBase({ router }), path, message);
  });

  it.each(invalid)("service: $label → $path", ({ router, path, message }) => {
    try {
      parseServiceConfiguration({ ...SERVICE, router });
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).issues.map(formatIssue)).toEqual([`${path}: ${message}`]);
      return;
    }
    throw new Error("accepted");
  });

  it("names every stray tunable of a non-cache_aware policy", () => {
    const issues = issuesOf(
      withBase({ router: { type: "sglang", policy: "random", max_tree_size: 5, eviction_interval: 1 } }),
    );
    expect(issues.map((i) => formatPath(i.path))).toEqual(["router.eviction_interval", "router.max_tree_size"]);
  });

  it("treats written-out defaults as the same configuration", () => {
    const plain = parseGatewayConfiguration(withBase({ router: { type: "sglang" } }));
    const explicit = parseGatewayConfiguration(
      withBase({ router: { type: "sglang", cache_threshold: 0.3, balance_abs_threshold: 64, max_tree_size: 2 ** 26 } }),
    );
    expect(diffConfigurations(plain, explicit)).toEqual([]);
  });
});

describe("parseGatewayConfiguration: cross-field rules", () => {
  const privateMessage = (b: BackendType) =>
    `private gateways are not supported for the ${b} backend; backends with private gateways: aws, gcp`;

  it.each<{ label: string; input: Doc; path: string; message: string | RegExp }>([
    ...(["azure", "kubernetes"] as const).map((backend) => ({
      label: `public_ip: false on ${backend}`,
      input: withBase({ backend, public_ip: false, certificate: null }),
      path: "public_ip",
      message: privateMessage(backend),
    })),
    {
      label: "public_ip: false on local",
      input: { ...LOCAL, public_ip: false },
      path: "public_ip",
      message: privateMessage("local"),
    },
    ...(["gcp", "azure", "kubernetes"] as const).map((backend) => ({
      label: `acm on ${backend}`,
      input: withBase({ backend, certificate: { type: "acm", arn: ARN } }),
      path: "certificate.type",
      message: "acm certificates are supported for the aws backend only",
    })),
    {
      label: "acm on local",
      input: { ...LOCAL, certificate: { type: "acm", arn: ARN } },
      path: "certificate.type",
      message: /aws backend only/,
    },
    {
      label: "lets-encrypt (default) with public_ip: false on aws",
      input: withBase({ public_ip: false }),
      path: "certificate.type",
      message: "lets-encrypt certificates are not supported for private gateways; set certificate: null",
    },
    {
      label: "explicit lets-encrypt with public_ip: false on gcp",
      input: withBase({ backend: "gcp", public_ip: false, certificate: { type: "lets-encrypt" } }),
      path: "certificate.type",
      message: /not supported for private gateways/,
    },
    {
      label: "lets-encrypt with replicas: 2 on aws suggests acm",
      input: withBase({ replicas: 2 }),
      path: "certificate.type",
      message:
        "lets-encrypt certificates are not supported for gateways with more than one replica (replicas: 2); set certificate: null, or certificate: {type: acm, arn: <certificate ARN>}",
    },
    ...(["gcp", "azure", "kubernetes"] as const).map((backend) => ({
      label: `lets-encrypt with replicas: 3 on ${backend} suggests only certificate: null`,
      input: withBase({ backend, replicas: 3 }),
      path: "certificate.type",
      message:
        "lets-encrypt certificates are not supported for gateways with more than one replica (replicas: 3); set certificate: null",
    })),
    {
      label: "lets-encrypt with replicas: 2 on local",
      input: { ...LOCAL, replicas: 2, certificate: { type: "lets-encrypt" } },
      path: "certificate.type",
      message: /more than one replica \(replicas: 2\); set certificate: null$/,
    },
    ...(["kubernetes", "local"] as const).map((backend) => ({
      label: `instance_type on ${backend}`,
      input: withBase({ backend, instance_type: "large", certificate: null }),
      path: "instance_type",
      message: `the ${backend} backend does not support the instance_type gateway property`,
    })),
  ])("$label → $path", ({ input, path, message }) => {
    expectRejected(input, path, message);
  });

  it.each<{ label: string; input: Doc }>([
    {
      label: "public_ip: false on aws with certificate: null",
      input: withBase({ public_ip: false, certificate: null }),
    },
    {
      label: "public_ip: false on gcp with certificate: null",
      input: withBase({ backend: "gcp", public_ip: false, certificate: null }),
    },
    { label: "acm on aws", input: withBase({ certificate: { type: "acm", arn: ARN } }) },
    { label: "lets-encrypt with replicas: 1", input: withBase({ replicas: 1, certificate: { type: "lets-encrypt" } }) },
    {
      label: "replicas: 2 with certificate: null",
      input: withBase({ backend: "gcp", replicas: 2, certificate: null }),
    },
    { label: "replicas: 2 with acm on aws", input: withBase({ replicas: 2, certificate: { type: "acm", arn: ARN } }) },
    { label: "replicas: 2 on local (certificate defaults to null)", input: { ...LOCAL, replicas: 2 } },
    { label: "instance_type on aws", input: withBase({ instance_type: "t3.medium" }) },
    { label: "instance_type on gcp", input: withBase({ backend: "gcp", instance_type: "e2-medium" }) },
  ])("allows $label", ({ input }) => {
    expect(() => parseGatewayConfiguration(input)).not.toThrow();
  });

  // Deliberate departures from dstack: its Azure compute ignored instance_type (fixed Standard_B1ms),
  // ours sizes the VM as asked; and dstack ≤0.20.29 refused a router on a replicated gateway because
  // each replica ran its own external router, while our built-in policies run per replica anyway.
  it.each<{ label: string; input: Doc }>([
    { label: "instance_type on azure", input: withBase({ backend: "azure", instance_type: "Standard_B2s" }) },
    {
      label: "a router with replicas > 1",
      input: withBase({ router: { type: "sglang" }, replicas: 2, certificate: null }),
    },
  ])("accepts $label", ({ input }) => {
    expect(() => parseGatewayConfiguration(input)).not.toThrow();
  });
});

describe("parseGatewayConfiguration: several errors", () => {
  it("reports every schema error at once, in field order", () => {
    const issues = issuesOf(withBase({ name: "X", replicas: 0, router: { type: "sglang", policy: "x" }, foo: 1 }));
    expect(issues.map((i) => formatPath(i.path))).toEqual(["name", "replicas", "router.policy", "foo"]);
  });

  it("reports every cross-field error at once", () => {
    const issues = issuesOf(
      withBase({ backend: "kubernetes", public_ip: false, instance_type: "x", certificate: { type: "acm", arn: ARN } }),
    );
    expect(issues.map(formatIssue)).toEqual([
      privateLine("kubernetes"),
      "instance_type: the kubernetes backend does not support the instance_type gateway property",
      "certificate.type: acm certificates are supported for the aws backend only",
    ]);
  });

  it("reports private lets-encrypt and replicated lets-encrypt together", () => {
    const issues = issuesOf(withBase({ public_ip: false, replicas: 2 }));
    expect(issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/private gateways/),
      expect.stringMatching(/more than one replica/),
    ]);
  });

  it("reports a missing region together with an invalid domain", () => {
    const paths = issuesOf({ type: "gateway", backend: "gcp", domain: "bad_domain" }).map((i) => formatPath(i.path));
    expect(paths).toEqual(["region", "domain"]);
  });

  it("reports schema errors together with region, domain and cross-field errors", () => {
    const paths = issuesOf({
      type: "gateway",
      backend: "azure",
      name: "X",
      domain: "bad_domain",
      public_ip: false,
    }).map((i) => formatPath(i.path));
    expect(paths).toEqual(expect.arrayContaining(["name", "region", "domain", "public_ip"]));
  });

  it("joins all issues into the error message, one a line", () => {
    expect(() => parseGatewayConfiguration(withBase({ name: "X", replicas: 0 }))).toThrow(
      /^name: must start .*\nreplicas: must be at least 1$/,
    );
  });

  function privateLine(b: BackendType): string {
    return `public_ip: private gateways are not supported for the ${b} backend; backends with private gateways: aws, gcp`;
  }
});

describe("parseGatewayConfiguration: non-mapping documents", () => {
  it.each<{ label: string; input: unknown; got: string }>([
    { label: "null (an empty YAML file)", input: null, got: "null" },
    { label: "undefined", input: undefined, got: "undefined" },
    { label: "a string", input: "type: gateway", got: '"type: gateway"' },
    { label: "a number", input: 42, got: "42" },
    { label: "a boolean", input: true, got: "true" },
    { label: "a list", input: [BASE], got: "a list" },
    { label: "an empty list", input: [], got: "a list" },
  ])("rejects $label", ({ input, got }) => {
    const err = (() => {
      try {
        parseGatewayConfiguration(input);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    const issues = (err as ValidationError).issues;
    expect(issues).toEqual([{ path: [], message: `expected a mapping with type: gateway, got ${got}` }]);
    expect((err as ValidationError).field).toBeUndefined();
  });

  it("points ValidationError.field at the first issue", () => {
    try {
      parseGatewayConfiguration(withBase({ router: { type: "sglang", policy: "x" } }));
      expect.unreachable();
    } catch (e) {
      expect((e as ValidationError).field).toBe("router.policy");
    }
  });
});

describe("interpolateDomain", () => {
  it.each<{ domain: string; project: string; expected: string }>([
    { domain: "example.com", project: "main", expected: "example.com" },
    { domain: `\${{ run.project_name }}.example.com`, project: "main", expected: "main.example.com" },
    { domain: `\${{run.project_name}}.example.com`, project: "team-a", expected: "team-a.example.com" },
    { domain: `\${{   run.project_name   }}.example.com`, project: "p1", expected: "p1.example.com" },
    { domain: `gw.\${{ run.project_name }}.\${{ run.project_name }}.io`, project: "ml", expected: "gw.ml.ml.io" },
  ])("$domain in $project → $expected", ({ domain, project, expected }) => {
    expect(interpolateDomain(domain, project)).toBe(expected);
  });

  it.each([`\${{ run.name }}.example.com`, `\${{ env.DOMAIN }}`, `\${{ secrets.x }}.example.com`])(
    "rejects %s",
    (domain) => {
      try {
        interpolateDomain(domain, "main");
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        expect((e as ValidationError).issues).toEqual([
          {
            path: ["domain"],
            message: expect.stringMatching(
              /^cannot interpolate \$\{\{ .+ \}\}: only \$\{\{ run\.project_name \}\} is supported$/,
            ),
          },
        ]);
      }
    },
  );

  it("works on a parsed domain", () => {
    const { domain } = parseGatewayConfiguration(withBase({ domain: `*.\${{ run.project_name }}.Example.com` }));
    expect(interpolateDomain(domain!, "main")).toBe("main.example.com");
  });
});

describe("diffConfigurations / isInPlace", () => {
  const CURRENT = withBase({ name: "example-gateway", certificate: null });
  const current = parseGatewayConfiguration(CURRENT);
  const diff = (overrides: Doc) => diffConfigurations(current, parseGatewayConfiguration({ ...CURRENT, ...overrides }));

  it.each<{ label: string; overrides: Doc; fields: string[]; inPlace: boolean }>([
    { label: "nothing", overrides: {}, fields: [], inPlace: true },
    { label: "domain", overrides: { domain: "other.example.com" }, fields: ["domain"], inPlace: true },
    { label: "domain removed", overrides: { domain: null }, fields: ["domain"], inPlace: true },
    { label: "default: true", overrides: { default: true }, fields: ["default"], inPlace: true },
    { label: "default: false", overrides: { default: false }, fields: ["default"], inPlace: true },
    { label: "replicas", overrides: { replicas: 3 }, fields: ["replicas"], inPlace: true },
    {
      label: "domain, default and replicas",
      overrides: { domain: "x.io", default: true, replicas: 2 },
      fields: ["default", "domain", "replicas"],
      inPlace: true,
    },
    { label: "name", overrides: { name: "other-gateway" }, fields: ["name"], inPlace: false },
    { label: "backend", overrides: { backend: "gcp" }, fields: ["backend"], inPlace: false },
    { label: "region", overrides: { region: "us-east-1" }, fields: ["region"], inPlace: false },
    { label: "instance_type", overrides: { instance_type: "t3.large" }, fields: ["instance_type"], inPlace: false },
    { label: "public_ip", overrides: { public_ip: false }, fields: ["public_ip"], inPlace: false },
    {
      label: "certificate",
      overrides: { certificate: { type: "lets-encrypt" } },
      fields: ["certificate"],
      inPlace: false,
    },
    {
      label: "certificate arn",
      overrides: { certificate: { type: "acm", arn: ARN } },
      fields: ["certificate"],
      inPlace: false,
    },
    { label: "tags", overrides: { tags: { team: "ml" } }, fields: ["tags"], inPlace: false },
    { label: "router", overrides: { router: { type: "sglang" } }, fields: ["router"], inPlace: false },
    {
      label: "domain and region",
      overrides: { domain: "x.io", region: "us-east-1" },
      fields: ["domain", "region"],
      inPlace: false,
    },
    {
      label: "replicas and router",
      overrides: { replicas: 2, router: { type: "sglang" } },
      fields: ["replicas", "router"],
      inPlace: false,
    },
  ])("$label changed → in place: $inPlace", ({ overrides, fields, inPlace }) => {
    const changed = diff(overrides).map((c) => c.field);
    expect([...changed].sort()).toEqual([...fields].sort());
    expect(isInPlace(changed)).toBe(inPlace);
  });

  it("reports the old and new values", () => {
    expect(diff({ domain: "new.example.com", replicas: 2 })).toEqual([
      { field: "domain", from: "example.com", to: "new.example.com" },
      { field: "replicas", from: 1, to: 2 },
    ]);
  });

  it("ignores default: null (leave the default as it is)", () => {
    const wasDefault = parseGatewayConfiguration({ ...CURRENT, default: true });
    expect(diffConfigurations(wasDefault, parseGatewayConfiguration({ ...CURRENT, default: null }))).toEqual([]);
    expect(diffConfigurations(wasDefault, parseGatewayConfiguration(CURRENT))).toEqual([]);
  });

  it("does not ignore default: false when the gateway is the default", () => {
    const wasDefault = parseGatewayConfiguration({ ...CURRENT, default: true });
    expect(diffConfigurations(wasDefault, parseGatewayConfiguration({ ...CURRENT, default: false }))).toEqual([
      { field: "default", from: true, to: false },
    ]);
  });

  it("ignores name: null (the name comes from the existing gateway)", () => {
    expect(diffConfigurations(current, parseGatewayConfiguration({ ...CURRENT, name: null }))).toEqual([]);
  });

  it("ignores the order of tags and router keys", () => {
    const a = parseGatewayConfiguration({
      ...CURRENT,
      tags: { a: "1", b: "2" },
      router: { type: "sglang", policy: "random" },
    });
    const b = parseGatewayConfiguration({
      ...CURRENT,
      tags: { b: "2", a: "1" },
      router: { policy: "random", type: "sglang" },
    });
    expect(diffConfigurations(a, b)).toEqual([]);
  });

  it("compares normalised domains and defaulted values", () => {
    expect(diff({ domain: "*.EXAMPLE.com" })).toEqual([]);
    expect(diff({ replicas: 1, public_ip: true, router: null })).toEqual([]);
    const withRouter = parseGatewayConfiguration({ ...CURRENT, router: { type: "sglang" } });
    expect(
      diffConfigurations(
        withRouter,
        parseGatewayConfiguration({ ...CURRENT, router: { type: "sglang", policy: "cache_aware" } }),
      ),
    ).toEqual([]);
  });

  it.each<{ fields: string[]; expected: boolean }>([
    { fields: [], expected: true },
    { fields: ["domain"], expected: true },
    { fields: ["default"], expected: true },
    { fields: ["replicas"], expected: true },
    { fields: [...IN_PLACE_FIELDS], expected: true },
    { fields: ["region"], expected: false },
    { fields: ["backend"], expected: false },
    { fields: ["router"], expected: false },
    { fields: ["certificate"], expected: false },
    { fields: ["domain", "name"], expected: false },
  ])("isInPlace($fields) is $expected", ({ fields, expected }) => {
    expect(isInPlace(fields)).toBe(expected);
  });
});

describe("examples", () => {
  const dir = fileURLToPath(new URL("../examples/", import.meta.url));
  const load = (file: string): unknown => parseYaml(readFileSync(`${dir}${file}`, "utf8"));

  // The two configurations of the seed document (dstack's gateways page).
  const SEED_GATEWAY = {
    type: "gateway",
    name: "example-gateway",
    backend: "aws",
    region: "eu-west-1",
    domain: "example.com",
  };
  const SEED_SGLANG = {
    type: "gateway",
    name: "sglang-gateway",
    backend: "aws",
    region: "eu-west-1",
    domain: "example.com",
    router: { type: "sglang", policy: "cache_aware" },
  };

  it.each(readdirSync(dir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml")))("%s validates", (file) => {
    expect(file).toMatch(/\.dstack\.yml$/);
    const doc = load(file) as { type?: string };
    const parse = doc.type === "service" ? parseServiceConfiguration : parseGatewayConfiguration;
    expect(() => parse(doc)).not.toThrow();
  });

  it("gateway.dstack.yml is the seed's first example", () => {
    expect(load("gateway.dstack.yml")).toEqual(SEED_GATEWAY);
    expect(parseGatewayConfiguration(load("gateway.dstack.yml"))).toEqual({
      type: "gateway",
      name: "example-gateway",
      default: null,
      backend: "aws",
      region: "eu-west-1",
      instance_type: null,
      domain: "example.com",
      public_ip: true,
      certificate: { type: "lets-encrypt" },
      replicas: 1,
      tags: null,
      router: null,
      observability: DEFAULT_OBSERVABILITY,
    } satisfies GatewayConfiguration);
  });

  it("sglang-gateway.dstack.yml is the seed's router example", () => {
    expect(load("sglang-gateway.dstack.yml")).toEqual(SEED_SGLANG);
    expect(parseGatewayConfiguration(load("sglang-gateway.dstack.yml"))).toMatchObject({
      name: "sglang-gateway",
      router: { type: "sglang", policy: "cache_aware" },
      certificate: { type: "lets-encrypt" },
    });
  });

  it("local-gateway.dstack.yml is a plain-HTTP gateway on localhost", () => {
    expect(load("local-gateway.dstack.yml")).toEqual({
      type: "gateway",
      name: "local-gateway",
      backend: "local",
      domain: "localhost",
    });
    expect(parseGatewayConfiguration(load("local-gateway.dstack.yml"))).toEqual({
      type: "gateway",
      name: "local-gateway",
      default: null,
      backend: "local",
      region: "local",
      instance_type: null,
      domain: "localhost",
      public_ip: true,
      certificate: null,
      replicas: 1,
      tags: null,
      router: null,
      observability: DEFAULT_OBSERVABILITY,
    } satisfies GatewayConfiguration);
  });

  it("the seed examples validate as plain objects too", () => {
    expect(() => parseGatewayConfiguration(SEED_GATEWAY)).not.toThrow();
    expect(() => parseGatewayConfiguration(SEED_SGLANG)).not.toThrow();
  });
});

describe("parseServiceConfiguration: rate_limits (dstack's RateLimit)", () => {
  const service = (rate_limits: unknown) => ({ type: "service", name: "svc", rate_limits });
  /** Every issue, rendered `path: message`. */
  function rejected(rate_limits: unknown): string[] {
    try {
      parseServiceConfiguration(service(rate_limits));
    } catch (e) {
      if (e instanceof ValidationError) return e.issues.map(formatIssue);
      throw e;
    }
    throw new Error(`expected ${JSON.stringify(rate_limits)} to be rejected`);
  }

  it("applies dstack's defaults: prefix /, key ip_address, burst 0; rps down to 1/60", () => {
    expect(parseServiceConfiguration(service([{ rps: 1 / 60 }])).rate_limits).toEqual([
      { prefix: "/", key: { type: "ip_address" }, rps: 1 / 60, burst: 0 },
    ]);
    expect(
      parseServiceConfiguration(
        service([{ prefix: "/v1/chat", key: { type: "header", header: "X-Api_Key" }, rps: 2.5, burst: 10 }]),
      ).rate_limits,
    ).toEqual([{ prefix: "/v1/chat", key: { type: "header", header: "X-Api_Key" }, rps: 2.5, burst: 10 }]);
  });

  it.each([
    [[{}], "rate_limits[0].rps: required field is missing"],
    [[{ rps: 0.01 }], "rate_limits[0].rps: must be at least 1/60 (one request a minute)"],
    [[{ rps: "5" }], 'rate_limits[0].rps: expected requests per second, got "5"'],
    [[{ rps: 5, burst: -1 }], "rate_limits[0].burst: must be at least 0"],
    [[{ rps: 5, burst: 1.5 }], "rate_limits[0].burst: expected an integer"],
    [
      [{ rps: 5, prefix: "v1" }],
      "rate_limits[0].prefix: must start with / and contain no spaces, backslashes or braces",
    ],
    [
      [{ rps: 5, prefix: "/a b" }],
      "rate_limits[0].prefix: must start with / and contain no spaces, backslashes or braces",
    ],
    [
      [{ rps: 5, prefix: "/a\\b" }],
      "rate_limits[0].prefix: must start with / and contain no spaces, backslashes or braces",
    ],
    [
      [{ rps: 5, prefix: "/{a}" }],
      "rate_limits[0].prefix: must start with / and contain no spaces, backslashes or braces",
    ],
    [[{ rps: 5, prefix: `/${"a".repeat(4094)}` }], "rate_limits[0].prefix: at most 4094 characters"],
    [[{ rps: 5, key: { type: "header" } }], "rate_limits[0].key.header: required field is missing"],
    [
      [{ rps: 5, key: { type: "header", header: "X Api" } }],
      "rate_limits[0].key.header: expected a header name of letters, digits, '-' or '_'",
    ],
    [
      [{ rps: 5, key: { type: "header", header: "h".repeat(501) } }],
      "rate_limits[0].key.header: at most 500 characters",
    ],
    [
      [{ rps: 5, key: { type: "cookie" } }],
      'rate_limits[0].key.type: expected one of ip_address, header, got "cookie"',
    ],
    [
      [{ rps: 5 }, { prefix: "/", rps: 6 }],
      "rate_limits: prefixes / are used more than once; each prefix may have one limit",
    ],
  ])("%j → %s", (limits, issue) => {
    expect(rejected(limits)).toContain(issue);
  });
});
