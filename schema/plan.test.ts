import { describe, expect, it } from "vitest";
import { type GatewayConfiguration, parseGatewayConfiguration } from "./gateway.ts";
import {
  decideGatewayApply,
  decideServiceApply,
  NO_DEFAULT_GATEWAY,
  planGateway,
  planIsCurrent,
  planService,
  STALE_PLAN,
  sameGatewayConfiguration,
  serviceGateway,
  serviceHostRefusal,
  serviceHttpsRefusal,
  serviceMoveRefusal,
} from "./plan.ts";
import { echoSpec } from "./plan-envelope.ts";

const gatewayConf = (extra: Record<string, unknown> = {}): GatewayConfiguration & { name: string } =>
  parseGatewayConfiguration({
    type: "gateway",
    name: "edge",
    backend: "aws",
    region: "eu-west-1",
    domain: "example.com",
    certificate: null,
    ...extra,
  }) as GatewayConfiguration & { name: string };

const running = (configuration = gatewayConf()) => ({
  id: "g1",
  name: "edge",
  status: "running",
  to_be_deleted: false,
  configuration,
});

describe("the plan envelope", () => {
  it("echoes a spec with its path, null when the client sent none", () => {
    expect(echoSpec({ configuration: { a: 1 } })).toEqual({ configuration: { a: 1 }, configuration_path: null });
    expect(echoSpec({ configuration: {}, configuration_path: "g.yml" }).configuration_path).toBe("g.yml");
  });
});

describe("gateway plans", () => {
  it("is a create without a current gateway", () => {
    expect(planGateway(null, gatewayConf())).toEqual({ action: "create", changes: [], in_place: false });
  });

  it("updates in place when only domain, default or replicas change", () => {
    const plan = planGateway(gatewayConf(), gatewayConf({ domain: "new.example.com", replicas: 2 }));
    expect(plan.action).toBe("update");
    expect(plan.in_place).toBe(true);
    expect(plan.changes.map((c) => c.field)).toEqual(["domain", "replicas"]);
  });

  it("updates observability in place, whole as one field", () => {
    const next = gatewayConf({ observability: { tracing: { endpoint: "http://otel:4318/v1/traces" } } });
    const plan = planGateway(gatewayConf(), next);
    expect(plan).toMatchObject({ action: "update", in_place: true });
    expect(plan.changes).toEqual([
      { field: "observability", from: gatewayConf().observability, to: next.observability },
    ]);
    const current = { id: "g1", configuration: gatewayConf() };
    const apply = { configuration: next, currentResource: current, force: false, recreate: false };
    expect(decideGatewayApply(running(), apply)).toEqual({
      ok: true,
      value: { kind: "update", changes: plan.changes },
    });
    // Absent, null and {} are the same defaults: no change.
    expect(planGateway(gatewayConf(), gatewayConf({ observability: {} })).changes).toEqual([]);
    expect(planGateway(gatewayConf(), gatewayConf({ observability: null })).changes).toEqual([]);
  });

  it("takes a plan made against a gateway stored before observability existed as current", () => {
    const { observability: _, ...old } = gatewayConf();
    expect(sameGatewayConfiguration(old, gatewayConf())).toBe(true);
    expect(sameGatewayConfiguration(old, gatewayConf({ observability: { metrics: { public: true } } }))).toBe(false);
  });

  it("re-creates when another field changes", () => {
    const plan = planGateway(gatewayConf(), gatewayConf({ region: "us-east-1" }));
    expect(plan).toMatchObject({ action: "create", in_place: false });
    expect(plan.changes).toEqual([{ field: "region", from: "eu-west-1", to: "us-east-1" }]);
  });
});

describe("gateway applies", () => {
  const planned = { id: "g1", configuration: gatewayConf() };
  const input = { configuration: gatewayConf(), currentResource: planned, force: false, recreate: false };

  it("updates in place with the changes", () => {
    const next = gatewayConf({ replicas: 3 });
    expect(decideGatewayApply(running(), { ...input, configuration: next })).toEqual({
      ok: true,
      value: { kind: "update", changes: [{ field: "replicas", from: 1, to: 3 }] },
    });
  });

  it("refuses a stale plan unless forced, ignoring the live default flag", () => {
    const stale = { ...input, currentResource: { id: "g0", configuration: gatewayConf() } };
    expect(decideGatewayApply(running(), stale)).toEqual({ ok: false, error: STALE_PLAN });
    expect(decideGatewayApply(running(), { ...stale, force: true }).ok).toBe(true);
    expect(decideGatewayApply(running(), { ...input, currentResource: null })).toEqual({
      ok: false,
      error: STALE_PLAN,
    });
    expect(sameGatewayConfiguration({ ...gatewayConf(), default: true }, gatewayConf())).toBe(true);
    expect(sameGatewayConfiguration("edge", gatewayConf())).toBe(false);
  });

  it("refuses a gateway being deleted before looking at the plan", () => {
    const result = decideGatewayApply({ ...running(), to_be_deleted: true }, { ...input, currentResource: null });
    expect(result).toMatchObject({ ok: false, error: { code: "being_deleted" } });
  });

  it("re-creates a FAILED gateway, and refuses to update it in place", () => {
    const failed = { ...running(), status: "failed" };
    expect(decideGatewayApply(failed, { ...input, recreate: true })).toEqual({ ok: true, value: { kind: "recreate" } });
    expect(decideGatewayApply(failed, input)).toEqual({
      ok: false,
      error: {
        kind: "busy",
        code: "failed",
        message: "Gateway edge is in FAILED status and cannot be updated in-place. Delete it and re-apply.",
      },
    });
  });

  it("refuses a change that needs a re-create, naming the fields", () => {
    const next = gatewayConf({ region: "us-east-1", replicas: 2 });
    expect(decideGatewayApply(running(), { ...input, configuration: next })).toEqual({
      ok: false,
      error: {
        kind: "conflict",
        code: "not_updatable",
        message: "Gateway edge cannot be updated in-place (changed: region). Re-create it (apply with recreate: true).",
        field: "region",
      },
    });
  });
});

describe("service plans and applies", () => {
  const current = { id: "s1", gateway: "edge", configuration: { type: "service", name: "echo", auth: true } };

  it("resolves the configured gateway, else the live default", () => {
    expect(serviceGateway("edge", { name: "edge", gone: false }, "main")).toEqual({ ok: true, value: "edge" });
    expect(serviceGateway("edge", null, "main")).toMatchObject({
      ok: false,
      error: { kind: "not_found", message: "Gateway edge does not exist in project main" },
    });
    expect(serviceGateway("edge", { name: "edge", gone: true }, "main")).toMatchObject({
      ok: false,
      error: { kind: "busy", code: "being_deleted", field: "gateway" },
    });
    expect(serviceGateway(null, { name: "edge", gone: false }, "main")).toEqual({ ok: true, value: "edge" });
    expect(serviceGateway(null, { name: "edge", gone: true }, "main")).toMatchObject({
      ok: false,
      error: { kind: "not_found", message: NO_DEFAULT_GATEWAY },
    });
  });

  it("lists the gateway first, then each changed field; a move is a create", () => {
    const next = { type: "service", name: "echo", auth: false, gateway: "backup" };
    expect(planService(current, next, "backup")).toEqual({
      action: "create",
      in_place: false,
      changes: [
        { field: "gateway", from: "edge", to: "backup" },
        { field: "auth", from: true, to: false },
      ],
    });
    expect(planService(current, { ...next, gateway: null }, "edge")).toMatchObject({
      action: "update",
      in_place: true,
    });
    expect(planService(null, next, "edge")).toEqual({ action: "create", in_place: false, changes: [] });
  });

  it("refuses to move a service between gateways", () => {
    expect(serviceMoveRefusal("echo", null, "edge")).toBeNull();
    expect(serviceMoveRefusal("echo", "edge", "edge")).toBeNull();
    expect(serviceMoveRefusal("echo", "edge", "backup")?.error).toEqual({
      kind: "conflict",
      code: "not_updatable",
      message: "Service echo is served by gateway edge; delete it and re-apply to move it to backup",
      field: "gateway",
    });
  });

  it("refuses gateways that take no services, and schemes they cannot serve", () => {
    const host = { name: "edge", status: "running", to_be_deleted: false, domain: "example.com", certificate: null };
    expect(serviceHostRefusal(host)).toBeNull();
    expect(serviceHostRefusal({ ...host, domain: null })?.error).toMatchObject({ kind: "invalid", field: "gateway" });
    expect(serviceHostRefusal({ ...host, status: "failed" })?.error.code).toBe("failed");
    expect(serviceHttpsRefusal(host, true)?.error).toMatchObject({
      kind: "invalid",
      code: "invalid_field",
      field: "https",
    });
    expect(serviceHttpsRefusal(host, "auto")).toBeNull();
    expect(serviceHttpsRefusal({ ...host, certificate: { type: "acm" } }, false)?.error.field).toBe("https");
  });

  it("creates whatever was planned, updates on a current plan, and leaves an unchanged service alone", () => {
    const configuration = { ...current.configuration, auth: false };
    const planned = { id: "s1", configuration: current.configuration };
    expect(decideServiceApply(null, { configuration, currentResource: planned, force: false })).toEqual({
      ok: true,
      value: "create",
    });
    expect(decideServiceApply(current, { configuration, currentResource: planned, force: false }).ok).toBe(true);
    expect(decideServiceApply(current, { configuration, currentResource: null, force: false })).toEqual({
      ok: false,
      error: STALE_PLAN,
    });
    expect(decideServiceApply(current, { configuration, currentResource: null, force: true })).toEqual({
      ok: true,
      value: "update",
    });
    expect(
      decideServiceApply(current, { configuration: current.configuration, currentResource: planned, force: false }),
    ).toEqual({ ok: true, value: "unchanged" });
    expect(planIsCurrent(undefined, current)).toBe(false);
  });
});
