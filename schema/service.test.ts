import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ConfigService } from "./config-document.ts";
import { ValidationError } from "./issues.ts";
import { decideServiceApply, planService } from "./plan.ts";
import {
  DEFAULT_USAGE,
  parseServiceConfiguration,
  type ServiceConfiguration,
  storedServiceConfiguration,
} from "./service.ts";

// `usage:` of a service: how the gateway gets token counts of streamed chat/completions responses.

const service = (extra: Record<string, unknown> = {}) =>
  parseServiceConfiguration({ type: "service", name: "llama", ...extra });

describe("usage: of a service", () => {
  it("defaults to as_requested: requests are never rewritten", () => {
    expect(DEFAULT_USAGE).toBe("as_requested");
    expect(service().usage).toBe("as_requested");
  });

  it("takes include and as_requested", () => {
    expect(service({ usage: "include" }).usage).toBe("include");
    expect(service({ usage: "as_requested" }).usage).toBe("as_requested");
  });

  it.each<[unknown, string]>([
    ["always", 'usage: expected one of include, as_requested, got "always"'],
    [true, "usage: expected one of include, as_requested, got true"],
    [null, "usage: expected one of include, as_requested, got null"],
  ])("refuses %j, naming the field", (usage, message) => {
    expect(() => service({ usage })).toThrow(ValidationError);
    expect(() => service({ usage })).toThrow(message);
  });

  it("changes in place (a new configuration version), and an unchanged one changes nothing", () => {
    const current = { gateway: "edge", configuration: service() };
    expect(planService(current, service({ usage: "include" }), "edge")).toEqual({
      action: "update",
      in_place: true,
      changes: [{ field: "usage", from: "as_requested", to: "include" }],
    });
    const stored = { id: "s1", configuration: service() };
    const input = { configuration: service(), currentResource: stored, force: false };
    expect(decideServiceApply(stored, input)).toEqual({ ok: true, value: "unchanged" });
    expect(decideServiceApply(stored, { ...input, configuration: service({ usage: "include" }) })).toEqual({
      ok: true,
      value: "update",
    });
  });

  it("a service stored before hsts existed (HTTPS came later) reads as hsts: false, so it shows no change", () => {
    const { hsts: _, ...old } = service();
    const stored = storedServiceConfiguration(old as ServiceConfiguration);
    expect(stored.hsts).toBe(false);
    expect(planService({ gateway: "edge", configuration: stored }, service(), "edge").changes).toEqual([]);
    expect(storedServiceConfiguration({ ...service(), hsts: null } as unknown as ServiceConfiguration).hsts).toBe(
      false,
    );
  });

  it("a service stored before usage existed reads as as_requested, so it shows no change", () => {
    const { usage: _, ...old } = service();
    const stored = storedServiceConfiguration(old as ServiceConfiguration);
    expect(stored.usage).toBe("as_requested");
    expect(planService({ gateway: "edge", configuration: stored }, service(), "edge").changes).toEqual([]);
    const set = service({ usage: "include" });
    expect(storedServiceConfiguration(set)).toBe(set);
    // A plan made against it by an older control plane is still current.
    const current = { id: "s1", configuration: service() };
    const planned = { id: "s1", configuration: old };
    expect(decideServiceApply(current, { configuration: service(), currentResource: planned, force: false })).toEqual({
      ok: true,
      value: "unchanged",
    });
  });
});

describe("usage in the configuration document", () => {
  const entry = {
    name: "llama",
    project: "main",
    host: "llama.example.com",
    https: false,
    auth: true,
    client_max_body_size: 0,
    read_timeout_ms: 1000,
    rate_limits: [],
    model: null,
    router: null,
    replicas: [],
  };

  it("is as_requested when absent (documents of older control planes)", () => {
    expect(v.parse(ConfigService, entry).usage).toBe("as_requested");
  });

  it("carries include, and refuses anything else naming the field", () => {
    expect(v.parse(ConfigService, { ...entry, usage: "include" }).usage).toBe("include");
    const bad = v.safeParse(ConfigService, { ...entry, usage: "sometimes" });
    expect(bad.success).toBe(false);
    expect(bad.issues?.[0]?.path?.map((p) => p.key)).toEqual(["usage"]);
  });
});
