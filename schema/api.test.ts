import type * as v from "valibot";
import { describe, expect, it } from "vitest";
import {
  ApplyRequest,
  BackendTypeParam,
  CreateProjectRequest,
  CreateTokenRequest,
  CreateUserRequest,
  DeleteGatewaysRequest,
  GatewaySpecInput,
  PlanRequest,
  SetMemberRequest,
} from "./api.ts";
import { BACKENDS, parseGatewayConfiguration } from "./gateway.ts";
import { formatIssue, formatPath, parseOrThrow, ValidationError } from "./issues.ts";

const CONFIGURATION = {
  type: "gateway",
  name: "example-gateway",
  backend: "aws",
  region: "eu-west-1",
  domain: "example.com",
};
const SPEC = { configuration: CONFIGURATION, configuration_path: "gateway.dstack.yml" };
const CURRENT = { id: "6c1f4f0e-8f3a-4f7e-9a55-2f7c1d1b0a11", configuration: { ...CONFIGURATION, default: true } };

function issuesOf(schema: v.GenericSchema, input: unknown) {
  try {
    parseOrThrow(schema, input);
  } catch (e) {
    if (e instanceof ValidationError) return e.issues;
    throw e;
  }
  throw new Error(`expected a ValidationError for ${JSON.stringify(input)}`);
}

type Valid = { label: string; input: unknown; expected?: unknown };
type Invalid = { label: string; input: unknown; path: string; message?: string | RegExp };

describe.each<{ name: string; schema: v.GenericSchema; valid: Valid[]; invalid: Invalid[] }>([
  {
    name: "GatewaySpecInput",
    schema: GatewaySpecInput,
    valid: [
      { label: "configuration and path", input: SPEC, expected: SPEC },
      {
        label: "configuration only",
        input: { configuration: CONFIGURATION },
        expected: { configuration: CONFIGURATION },
      },
      { label: "configuration_path: null", input: { configuration: {}, configuration_path: null } },
      // The configuration itself is validated later, by parseGatewayConfiguration.
      { label: "an invalid configuration mapping", input: { configuration: { type: "service" } } },
    ],
    invalid: [
      { label: "missing configuration", input: { configuration_path: "x.dstack.yml" }, path: "configuration" },
      {
        label: "configuration as YAML text",
        input: { configuration: "type: gateway" },
        path: "configuration",
        message: 'expected the gateway configuration as a mapping, got "type: gateway"',
      },
      {
        label: "configuration: null",
        input: { configuration: null },
        path: "configuration",
        message: "expected the gateway configuration as a mapping, got null",
      },
      {
        label: "configuration as a list",
        input: { configuration: [CONFIGURATION] },
        path: "configuration",
        message: "expected the gateway configuration as a mapping, got a list",
      },
      {
        label: "numeric configuration_path",
        input: { configuration: {}, configuration_path: 1 },
        path: "configuration_path",
      },
      { label: "unknown field", input: { ...SPEC, effective: true }, path: "effective" },
    ],
  },
  {
    name: "PlanRequest",
    schema: PlanRequest,
    valid: [{ label: "a spec", input: { spec: SPEC }, expected: { spec: SPEC } }],
    invalid: [
      { label: "empty body", input: {}, path: "spec" },
      { label: "null body", input: null, path: "" },
      { label: "a bare configuration", input: CONFIGURATION, path: "spec" },
      { label: "spec: null", input: { spec: null }, path: "spec" },
      { label: "spec without configuration", input: { spec: {} }, path: "spec.configuration" },
      {
        label: "configuration as a string",
        input: { spec: { configuration: "x" } },
        path: "spec.configuration",
        message: 'expected the gateway configuration as a mapping, got "x"',
      },
      {
        label: "configuration as a list",
        input: { spec: { configuration: [] } },
        path: "spec.configuration",
        message: "expected the gateway configuration as a mapping, got a list",
      },
      { label: "unknown field", input: { spec: SPEC, force: true }, path: "force" },
    ],
  },
  {
    name: "ApplyRequest",
    schema: ApplyRequest,
    valid: [
      {
        label: "a create plan",
        input: { plan: { spec: SPEC } },
        expected: { plan: { spec: SPEC }, force: false, recreate: false, cascade: false },
      },
      { label: "current_resource: null", input: { plan: { spec: SPEC, current_resource: null }, force: false } },
      {
        label: "an update plan",
        input: { plan: { spec: SPEC, current_resource: CURRENT } },
        expected: { plan: { spec: SPEC, current_resource: CURRENT }, force: false, recreate: false, cascade: false },
      },
      {
        label: "a whole Gateway as current_resource (extra fields kept)",
        input: { plan: { spec: SPEC, current_resource: { ...CURRENT, name: "example-gateway", status: "running" } } },
        expected: {
          plan: { spec: SPEC, current_resource: { ...CURRENT, name: "example-gateway", status: "running" } },
          force: false,
          recreate: false,
          cascade: false,
        },
      },
      {
        label: "force: true",
        input: { plan: { spec: SPEC }, force: true },
        expected: { plan: { spec: SPEC }, force: true, recreate: false, cascade: false },
      },
      {
        label: "a re-create that may take services with it",
        input: { plan: { spec: SPEC, current_resource: CURRENT }, recreate: true, cascade: true },
        expected: { plan: { spec: SPEC, current_resource: CURRENT }, force: false, recreate: true, cascade: true },
      },
    ],
    invalid: [
      { label: "empty body", input: {}, path: "plan" },
      { label: "a spec instead of a plan", input: { spec: SPEC }, path: "spec" },
      { label: "plan without spec", input: { plan: {} }, path: "plan.spec" },
      {
        label: "configuration as a string",
        input: { plan: { spec: { configuration: "x" } } },
        path: "plan.spec.configuration",
        message: 'expected the gateway configuration as a mapping, got "x"',
      },
      {
        label: "current_resource without id",
        input: { plan: { spec: SPEC, current_resource: { configuration: {} } } },
        path: "plan.current_resource.id",
      },
      {
        label: "current_resource with a numeric id",
        input: { plan: { spec: SPEC, current_resource: { ...CURRENT, id: 7 } } },
        path: "plan.current_resource.id",
      },
      {
        label: "current_resource without configuration",
        input: { plan: { spec: SPEC, current_resource: { id: CURRENT.id } } },
        path: "plan.current_resource.configuration",
      },
      {
        label: "current_resource as a string",
        input: { plan: { spec: SPEC, current_resource: "gw" } },
        path: "plan.current_resource",
      },
      {
        label: 'force: "yes"',
        input: { plan: { spec: SPEC }, force: "yes" },
        path: "force",
        message: "expected true or false",
      },
      {
        label: "force: null",
        input: { plan: { spec: SPEC }, force: null },
        path: "force",
        message: "expected true or false",
      },
      { label: "unknown field in plan", input: { plan: { spec: SPEC, action: "create" } }, path: "plan.action" },
      { label: "unknown top-level field", input: { plan: { spec: SPEC }, yes: true }, path: "yes" },
    ],
  },
  {
    name: "DeleteGatewaysRequest",
    schema: DeleteGatewaysRequest,
    valid: [
      {
        label: "one name",
        input: { names: ["example-gateway"] },
        expected: { names: ["example-gateway"], cascade: false },
      },
      { label: "several names", input: { names: ["gw-a", "gw-b"] } },
    ],
    invalid: [
      { label: "no names", input: { names: [] }, path: "names", message: "name at least one gateway" },
      { label: "missing names", input: {}, path: "names" },
      { label: "a single name", input: { names: "gw-a" }, path: "names", message: "expected a list of gateway names" },
      {
        label: "a non-string name",
        input: { names: ["gw-a", 1] },
        path: "names[1]",
        message: "expected gateway names",
      },
      { label: "a null name", input: { names: [null] }, path: "names[0]", message: "expected gateway names" },
      { label: "name instead of names", input: { name: "gw-a" }, path: "name" },
    ],
  },
  {
    name: "CreateProjectRequest",
    schema: CreateProjectRequest,
    valid: [
      { label: "main", input: { name: "main" }, expected: { name: "main" } },
      { label: "2 characters", input: { name: "ml" } },
      { label: "41 characters", input: { name: `p${"1".repeat(40)}` } },
    ],
    invalid: [
      { label: "missing name", input: {}, path: "name" },
      { label: "numeric name", input: { name: 5 }, path: "name", message: "expected a project name" },
      { label: "1 character", input: { name: "p" }, path: "name", message: /2–41/ },
      { label: "42 characters", input: { name: `p${"1".repeat(41)}` }, path: "name", message: /2–41/ },
      { label: "uppercase", input: { name: "Main" }, path: "name", message: /lowercase/ },
      { label: "leading digit", input: { name: "1project" }, path: "name", message: /start with a lowercase letter/ },
      { label: "underscore", input: { name: "my_project" }, path: "name" },
      { label: "unknown field", input: { name: "main", owner: "me" }, path: "owner" },
    ],
  },
  {
    name: "CreateUserRequest",
    schema: CreateUserRequest,
    valid: [{ label: "alice", input: { name: "alice" }, expected: { name: "alice" } }],
    invalid: [
      { label: "missing name", input: {}, path: "name" },
      { label: "numeric name", input: { name: 5 }, path: "name", message: "expected a user name" },
      { label: "an email address", input: { name: "alice@example.com" }, path: "name", message: /lowercase/ },
      { label: "unknown field", input: { name: "alice", role: "admin" }, path: "role" },
    ],
  },
  {
    name: "SetMemberRequest",
    schema: SetMemberRequest,
    valid: [
      { label: "admin", input: { role: "admin" }, expected: { role: "admin" } },
      { label: "member", input: { role: "member" }, expected: { role: "member" } },
    ],
    invalid: [
      { label: "owner", input: { role: "owner" }, path: "role", message: "expected one of admin, member" },
      { label: "Admin", input: { role: "Admin" }, path: "role", message: "expected one of admin, member" },
      { label: "missing role", input: {}, path: "role" },
      { label: "unknown field", input: { role: "admin", user: "alice" }, path: "user" },
    ],
  },
  {
    name: "CreateTokenRequest",
    schema: CreateTokenRequest,
    valid: [
      { label: "no description", input: {}, expected: {} },
      { label: "a description", input: { description: "CI" }, expected: { description: "CI" } },
      { label: "200 characters", input: { description: "d".repeat(200) } },
    ],
    invalid: [
      {
        label: "201 characters",
        input: { description: "d".repeat(201) },
        path: "description",
        message: "at most 200 characters",
      },
      { label: "numeric description", input: { description: 5 }, path: "description" },
      { label: "unknown field", input: { expires_in: 3600 }, path: "expires_in" },
    ],
  },
  {
    name: "BackendTypeParam",
    schema: BackendTypeParam,
    valid: BACKENDS.map((b) => ({ label: b, input: b, expected: b })),
    invalid: [
      { label: "runpod", input: "runpod", path: "", message: "expected one of aws, gcp, azure, kubernetes, local" },
      { label: "AWS", input: "AWS", path: "", message: "expected one of aws, gcp, azure, kubernetes, local" },
      { label: "a number", input: 1, path: "" },
    ],
  },
])("$name", ({ schema, valid, invalid }) => {
  it.each(valid)("accepts $label", ({ input, expected }) => {
    const out = parseOrThrow(schema, input);
    if (expected !== undefined) expect(out).toEqual(expected);
  });

  it.each(invalid)("rejects $label at '$path'", ({ input, path, message }) => {
    const issues = issuesOf(schema, input);
    const atPath = issues.filter((i) => formatPath(i.path) === path);
    expect(atPath, JSON.stringify(issues.map(formatIssue))).not.toHaveLength(0);
    if (typeof message === "string") expect(atPath.map((i) => i.message)).toContain(message);
    else if (message) expect(atPath.some((i) => message.test(i.message))).toBe(true);
  });
});

describe("parseOrThrow", () => {
  it("returns the parsed output with defaults applied", () => {
    expect(parseOrThrow(ApplyRequest, { plan: { spec: SPEC } }).force).toBe(false);
  });

  it("throws a ValidationError listing every issue with its path", () => {
    try {
      parseOrThrow(ApplyRequest, { plan: { spec: { configuration: "x" } }, force: "yes" });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      const err = e as ValidationError;
      expect(err.issues.map((i) => formatPath(i.path))).toEqual(["plan.spec.configuration", "force"]);
      expect(err.field).toBe("plan.spec.configuration");
      expect(err.message).toBe(
        'plan.spec.configuration: expected the gateway configuration as a mapping, got "x"\nforce: expected true or false',
      );
    }
  });

  it("renders list indexes as [n]", () => {
    try {
      parseOrThrow(DeleteGatewaysRequest, { names: ["a", "b", 3] });
      expect.unreachable();
    } catch (e) {
      expect((e as ValidationError).message).toBe("names[2]: expected gateway names");
    }
  });

  it("a planned spec's configuration goes through parseGatewayConfiguration", () => {
    const { spec } = parseOrThrow(PlanRequest, { spec: SPEC });
    expect(parseGatewayConfiguration(spec.configuration)).toMatchObject({ name: "example-gateway", replicas: 1 });
  });
});
