/**
 * @module
 * The `type: gateway` configuration (dstack's `GatewayConfiguration` plus the seed's `router`).
 * One source of truth: the CLI validates files with it before sending them, the Worker validates
 * every API payload with it again, and the OpenAPI document is generated from it.
 */
import * as v from "valibot";
import {
  checkInputTree,
  describeType,
  expected,
  type FieldIssue,
  fromValibot,
  isMapping,
  mapping,
  oneOf,
  strictEntries,
  ValidationError,
} from "./issues.ts";
import { sameJson } from "./json.ts";
import {
  DEFAULT_OBSERVABILITY,
  type ObservabilityDocument,
  ObservabilityInput,
  observabilityDocument,
} from "./observability.ts";
import { GatewayRouter, type RouterConfig } from "./router.ts";
import { text } from "./text.ts";

export { ROUTER_POLICIES, type RouterConfig, type RouterPolicy } from "./router.ts";

export const BACKENDS = ["aws", "gcp", "azure", "kubernetes", "local"] as const;
export type BackendType = (typeof BACKENDS)[number];
/** Backends whose gateways may be private (`public_ip: false`). */
export const PRIVATE_GATEWAY_BACKENDS: readonly BackendType[] = ["aws", "gcp"];
/** Backends that choose their own machine size; `instance_type` is refused for them. */
export const NO_INSTANCE_TYPE_BACKENDS: readonly BackendType[] = ["kubernetes", "local"];
export const MAX_GATEWAY_REPLICAS = 9;
export const NAME_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
export const TAG_KEY_PATTERN = /^[_\-a-zA-Z0-9]{1,60}$/;
export const TAG_VALUE_PATTERN = /^[a-zA-Z0-9 .:/=_\-+@]{0,256}$/;
/**
 * Fields that change without re-creating the gateway (dstack's `_CONF_UPDATABLE_FIELDS`, plus
 * `observability`, which only the hosts' agents and proxies act on: a new configuration version).
 */
export const IN_PLACE_FIELDS = ["domain", "default", "replicas", "observability"] as const;

const Name = v.pipe(
  v.string(expected("a string")),
  v.regex(NAME_PATTERN, "must start with a lowercase letter and contain 2–41 lowercase letters, digits or hyphens"),
);

function isHttpsUrl(s: string): boolean {
  try {
    return new URL(s).protocol === "https:";
  } catch {
    return false;
  }
}

const LetsEncrypt = strictEntries({
  type: v.literal("lets-encrypt"),
  /** ACME directory URL (dstack's DSTACK_ACME_SERVER); absent: Let's Encrypt production. */
  acme_server: v.optional(
    v.pipe(text(expected("a URL")), v.check(isHttpsUrl, "expected an https:// ACME directory URL")),
  ),
});
const Acm = strictEntries({
  type: v.literal("acm"),
  arn: v.pipe(
    v.string(expected("a string")),
    v.regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/, "expected an ACM certificate ARN"),
  ),
});
const Certificate = v.pipe(
  v.custom<Record<string, unknown>>(
    isMapping,
    (issue) => `expected a mapping or null, got ${describeType(issue.input)}`,
  ),
  v.variant("type", [LetsEncrypt, Acm], (issue) =>
    issue.expected?.includes('"acm"')
      ? `expected one of lets-encrypt, acm, got ${describeType(issue.input)}`
      : `expected a mapping or null, got ${describeType(issue.input)}`,
  ),
);

const Tags = v.pipe(
  v.custom<Record<string, unknown>>(
    isMapping,
    (issue) => `expected a mapping of tag names to values, got ${describeType(issue.input)}`,
  ),
  v.record(
    v.pipe(v.string(), v.regex(TAG_KEY_PATTERN, "tag keys are 1–60 letters, digits, '_' or '-'")),
    v.pipe(
      v.string(expected("a string")),
      v.regex(TAG_VALUE_PATTERN, "tag values are at most 256 of letters, digits, spaces and . : / = _ - + @"),
    ),
    expected("a mapping of tag names to values"),
  ),
);

/** The shape of the file as written (defaults not yet applied). */
export const GatewayConfigurationInput = mapping(
  {
    type: v.picklist(["gateway"], oneOf(["gateway"])),
    name: v.optional(v.nullable(Name)),
    default: v.optional(v.nullable(v.boolean(expected("true or false")))),
    backend: v.picklist(BACKENDS, oneOf(BACKENDS)),
    region: v.optional(v.nullable(v.pipe(text(), v.minLength(1, "must not be empty")))),
    instance_type: v.optional(v.nullable(v.pipe(text(), v.minLength(1, "must not be empty")))),
    domain: v.optional(v.nullable(text())),
    public_ip: v.optional(v.boolean(expected("true or false")), true),
    certificate: v.optional(v.nullable(Certificate)),
    replicas: v.optional(
      v.nullable(
        v.pipe(
          v.number(expected("an integer")),
          v.integer("expected an integer"),
          v.minValue(1, "must be at least 1"),
          v.maxValue(MAX_GATEWAY_REPLICAS, `at most ${MAX_GATEWAY_REPLICAS} gateway replicas are supported`),
        ),
      ),
    ),
    tags: v.optional(v.nullable(Tags)),
    router: v.optional(v.nullable(GatewayRouter)),
    /** What the hosts export of the traffic they carry (`observability.ts`); absent or null: the defaults. */
    observability: v.optional(ObservabilityInput),
  },
  "a mapping with type: gateway",
);

export type CertificateConfig = v.InferOutput<typeof Certificate>;

/** A validated configuration with every default applied: what the control plane stores and diffs. */
export interface GatewayConfiguration {
  type: "gateway";
  name: string | null;
  /** `null`: leave the project's default gateway as it is (create: default only if the project has none). */
  default: boolean | null;
  backend: BackendType;
  region: string;
  instance_type: string | null;
  /** Wildcard domain without a leading `*.`, lower-cased; may still contain `${{ run.project_name }}`. */
  domain: string | null;
  public_ip: boolean;
  certificate: CertificateConfig | null;
  replicas: number;
  tags: Record<string, string> | null;
  router: RouterConfig | null;
  /** Every default applied (absent or null in the file: {@link DEFAULT_OBSERVABILITY}). */
  observability: ObservabilityDocument;
}

const INTERPOLATION = /\$\{\{\s*([^}]*?)\s*\}\}/g;
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Substitutes `${{ run.project_name }}` in a gateway domain. Any other variable is an error, as in
 * dstack (`Cannot interpolate gateway domain name`).
 */
export function interpolateDomain(domain: string, projectName: string): string {
  return domain.replace(INTERPOLATION, (whole, name: string) => {
    if (name === "run.project_name") return projectName;
    throw new ValidationError([
      { path: ["domain"], message: `cannot interpolate ${whole}: only \${{ run.project_name }} is supported` },
    ]);
  });
}

function checkDomain(raw: string, issues: FieldIssue[]): string | null {
  // Variables are case-sensitive (as dstack's); only the literal parts of a domain are lower-cased.
  const trimmed = raw.trim().replace(/^\*\./, "");
  const domain = trimmed
    .split(/(\$\{\{[^}]*\}\})/)
    .map((part, i) => (i % 2 === 0 ? part.toLowerCase() : part))
    .join("");
  let sample: string;
  try {
    sample = interpolateDomain(domain, "example");
  } catch (e) {
    if (e instanceof ValidationError) issues.push(...e.issues);
    return null;
  }
  if (!DOMAIN_PATTERN.test(sample)) {
    issues.push({ path: ["domain"], message: `expected a domain name such as example.com, got "${raw}"` });
    return null;
  }
  return domain;
}

/** dstack's cross-field rules, each reported under the field a user has to change. */
function checkCrossField(c: GatewayConfiguration, issues: FieldIssue[]): void {
  if (!c.public_ip && !PRIVATE_GATEWAY_BACKENDS.includes(c.backend)) {
    issues.push({
      path: ["public_ip"],
      message: `private gateways are not supported for the ${c.backend} backend; backends with private gateways: ${PRIVATE_GATEWAY_BACKENDS.join(", ")}`,
    });
  }
  if (c.instance_type !== null && NO_INSTANCE_TYPE_BACKENDS.includes(c.backend)) {
    issues.push({
      path: ["instance_type"],
      message: `the ${c.backend} backend does not support the instance_type gateway property`,
    });
  }
  const cert = c.certificate;
  if (cert?.type === "acm" && c.backend !== "aws") {
    issues.push({ path: ["certificate", "type"], message: "acm certificates are supported for the aws backend only" });
  }
  if (cert?.type === "lets-encrypt" && !c.public_ip) {
    issues.push({
      path: ["certificate", "type"],
      message: "lets-encrypt certificates are not supported for private gateways; set certificate: null",
    });
  }
  if (cert?.type === "lets-encrypt" && c.replicas > 1) {
    const alternatives =
      c.backend === "aws"
        ? "certificate: null, or certificate: {type: acm, arn: <certificate ARN>}"
        : "certificate: null";
    issues.push({
      path: ["certificate", "type"],
      message: `lets-encrypt certificates are not supported for gateways with more than one replica (replicas: ${c.replicas}); set ${alternatives}`,
    });
  }
}

/**
 * Validates a gateway configuration and applies its defaults. Throws a {@link ValidationError}
 * listing every problem, each under its field path.
 */
export function parseGatewayConfiguration(input: unknown): GatewayConfiguration {
  if (!isMapping(input)) {
    throw new ValidationError([
      { path: [], message: `expected a mapping with type: gateway, got ${describeType(input)}` },
    ]);
  }
  checkInputTree(input);
  const result = v.safeParse(GatewayConfigurationInput, input);
  const issues: FieldIssue[] = result.success ? [] : fromValibot(result.issues);
  // On schema errors, the remaining checks still run on the fields that are valid, so a user sees
  // every problem at once; fields already reported fall back to their defaults.
  const bad = new Set(issues.map((i) => String(i.path[0] ?? "")));
  const raw = (result.success ? result.output : bestEffort(input, bad)) as v.InferOutput<
    typeof GatewayConfigurationInput
  >;
  const isLocal = raw.backend === "local";
  if (!raw.region && !isLocal && !bad.has("region") && !bad.has("backend")) {
    issues.push({ path: ["region"], message: `required for the ${raw.backend} backend` });
  }
  const domain = raw.domain == null || bad.has("domain") ? null : checkDomain(raw.domain, issues);
  const config: GatewayConfiguration = {
    type: "gateway",
    name: raw.name ?? null,
    default: raw.default ?? null,
    backend: raw.backend,
    region: raw.region ?? "local",
    instance_type: raw.instance_type ?? null,
    domain,
    public_ip: raw.public_ip ?? true,
    certificate: raw.certificate === undefined ? (isLocal ? null : { type: "lets-encrypt" }) : raw.certificate,
    replicas: raw.replicas ?? 1,
    tags: raw.tags ?? null,
    router: raw.router ?? null,
    observability: observabilityDocument(raw.observability),
  };
  if (!bad.has("backend")) {
    const cross: FieldIssue[] = [];
    checkCrossField(config, cross);
    issues.push(...cross.filter((i) => !bad.has(String(i.path[0]))));
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return config;
}

/**
 * A configuration as stored by this or an older control plane (the object's storage, a client's
 * `current_resource`): fields added since are filled with their defaults, so a gateway stored before
 * `observability` existed neither shows a change nor looks stale to a plan made against it.
 */
export function storedGatewayConfiguration(stored: GatewayConfiguration): GatewayConfiguration {
  return stored.observability ? stored : { ...stored, observability: DEFAULT_OBSERVABILITY };
}

/** The input with every reported top-level field removed (so defaults stand in for them). */
function bestEffort(input: Record<string, unknown>, bad: Set<string>): Record<string, unknown> {
  const known = Object.keys(GatewayConfigurationInput.pipe[1].entries);
  return Object.fromEntries(Object.entries(input).filter(([k]) => known.includes(k) && !bad.has(k)));
}

/** Field-by-field differences between two stored configurations; `default: null` means "unchanged". */
export function diffConfigurations(
  current: GatewayConfiguration,
  next: GatewayConfiguration,
): { field: keyof GatewayConfiguration; from: unknown; to: unknown }[] {
  const changes: { field: keyof GatewayConfiguration; from: unknown; to: unknown }[] = [];
  for (const field of Object.keys(next) as (keyof GatewayConfiguration)[]) {
    if (field === "default" && next.default === null) continue;
    if (field === "name" && next.name === null) continue;
    if (!sameJson(current[field], next[field])) changes.push({ field, from: current[field], to: next[field] });
  }
  return changes;
}

export const isInPlace = (fields: readonly string[]): boolean =>
  fields.every((f) => (IN_PLACE_FIELDS as readonly string[]).includes(f));
