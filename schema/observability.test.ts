import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ConfigDocument } from "./config-document.ts";
import { type GatewayConfiguration, parseGatewayConfiguration, storedGatewayConfiguration } from "./gateway.ts";
import { ValidationError } from "./issues.ts";
import { DEFAULT_OBSERVABILITY, MAX_ACCESS_LOG_MAX_FILES } from "./observability.ts";

// `observability:` of a gateway, as the gateway parser takes it: defaults, bounds, errors under the
// field's full path, and the document form the configuration document carries.

const gateway = (observability?: unknown) =>
  parseGatewayConfiguration({
    type: "gateway",
    name: "edge",
    backend: "local",
    domain: "example.com",
    ...(observability === undefined ? {} : { observability }),
  });

/** The first error of a configuration that must be refused, as the API and the CLI render it. */
function refusal(observability: unknown): string {
  try {
    gateway(observability);
  } catch (e) {
    if (e instanceof ValidationError) return e.message;
    throw e;
  }
  throw new Error("accepted");
}

describe("observability: of a gateway", () => {
  it("defaults to metrics on loopback only, no access log, no tracing (absent, null or empty)", () => {
    expect(DEFAULT_OBSERVABILITY).toEqual({ metrics: { public: false }, access_log: null, tracing: null });
    expect(gateway().observability).toEqual(DEFAULT_OBSERVABILITY);
    expect(gateway(null).observability).toEqual(DEFAULT_OBSERVABILITY);
    expect(gateway({}).observability).toEqual(DEFAULT_OBSERVABILITY);
    expect(gateway({ metrics: null, access_log: null, tracing: null }).observability).toEqual(DEFAULT_OBSERVABILITY);
  });

  it("fills each part's defaults once the part is there", () => {
    expect(gateway({ metrics: {}, access_log: {}, tracing: { endpoint: "http://otel:4318/v1/traces" } })).toMatchObject(
      {
        observability: {
          metrics: { public: false },
          access_log: { destination: "stdout", max_size: 100 * 1024 ** 2, max_files: 5 },
          tracing: { endpoint: "http://otel:4318/v1/traces", sample_ratio: 1 },
        },
      },
    );
  });

  it("takes every field as written", () => {
    const c = gateway({
      metrics: { public: true },
      access_log: { destination: "file", max_size: "1GB", max_files: 20 },
      tracing: { endpoint: "https://collector.example.com/v1/traces", sample_ratio: 0.05 },
    });
    expect(c.observability).toEqual({
      metrics: { public: true },
      access_log: { destination: "file", max_size: 1024 ** 3, max_files: 20 },
      tracing: { endpoint: "https://collector.example.com/v1/traces", sample_ratio: 0.05 },
    });
  });

  it.each<[string, unknown, string]>([
    ["a list", [], "observability: expected a mapping or null, got a list"],
    ["an unknown part", { logs: {} }, "observability.logs: unknown field"],
    [
      "an unknown key in a part",
      { tracing: { endpoint: "http://o:4318", headers: {} } },
      "observability.tracing.headers: unknown field",
    ],
    [
      "metrics.public not a boolean",
      { metrics: { public: "yes" } },
      'observability.metrics.public: expected true or false, got "yes"',
    ],
    [
      "an unknown destination",
      { access_log: { destination: "syslog" } },
      'observability.access_log.destination: expected one of stdout, file, got "syslog"',
    ],
    [
      "a rotation size under 1MB",
      { access_log: { max_size: "512k" } },
      "observability.access_log.max_size: must be at least 1MB",
    ],
    [
      "a rotation size over 100GB",
      { access_log: { max_size: "101GB" } },
      "observability.access_log.max_size: expected a size such as 64MB",
    ],
    [
      "no files kept",
      { access_log: { max_files: 0 } },
      `observability.access_log.max_files: expected an integer from 1 to ${MAX_ACCESS_LOG_MAX_FILES}`,
    ],
    [
      "too many files",
      { access_log: { max_files: 101 } },
      "observability.access_log.max_files: expected an integer from 1 to 100",
    ],
    ["tracing without endpoint", { tracing: {} }, "observability.tracing.endpoint: required field is missing"],
    [
      "a non-HTTP endpoint",
      { tracing: { endpoint: "grpc://otel:4317" } },
      "observability.tracing.endpoint: expected an http:// or https:// URL",
    ],
    [
      "credentials in the endpoint",
      { tracing: { endpoint: "https://u:p@otel/v1/traces" } },
      "observability.tracing.endpoint: expected an http:// or https:// URL without credentials",
    ],
    [
      "control characters in the endpoint",
      { tracing: { endpoint: "http://otel/\u001b[2J" } },
      "observability.tracing.endpoint:",
    ],
    [
      "a sample ratio over 1",
      { tracing: { endpoint: "http://otel:4318", sample_ratio: 1.5 } },
      "observability.tracing.sample_ratio: expected a number from 0 to 1",
    ],
    [
      "a negative sample ratio",
      { tracing: { endpoint: "http://otel:4318", sample_ratio: -0.1 } },
      "observability.tracing.sample_ratio: expected a number from 0 to 1",
    ],
  ])("refuses %s, naming the field", (_label, observability, message) => {
    expect(refusal(observability)).toContain(message);
  });

  it("reports an observability error beside the other fields' errors", () => {
    try {
      parseGatewayConfiguration({ type: "gateway", backend: "local", replicas: 0, observability: { metrics: 1 } });
      throw new Error("accepted");
    } catch (e) {
      expect((e as ValidationError).issues.map((i) => i.path.join("."))).toEqual(["replicas", "observability.metrics"]);
    }
  });

  it("its document form is valid input again (the API echoes it, clients send it back)", () => {
    const c = gateway({ access_log: { destination: "file" }, tracing: { endpoint: "http://otel:4318/v1/traces" } });
    expect(gateway(c.observability).observability).toEqual(c.observability);
  });

  it("a configuration stored before observability existed reads as the defaults", () => {
    const { observability: _, ...old } = gateway();
    expect(storedGatewayConfiguration(old as GatewayConfiguration).observability).toEqual(DEFAULT_OBSERVABILITY);
    const set = gateway({ metrics: { public: true } });
    expect(storedGatewayConfiguration(set)).toBe(set);
  });
});

describe("observability in the configuration document", () => {
  const document = {
    version: 1,
    gateway: { id: "g", name: "edge", project: "main", domain: null, router: null },
    services: [],
    entrypoint: null,
    generated_at: new Date(0).toISOString(),
  };

  it("is the defaults when absent (documents of older control planes still parse)", () => {
    expect(v.parse(ConfigDocument, document).observability).toEqual(DEFAULT_OBSERVABILITY);
  });

  it("carries what the gateway says, and refuses values out of bounds naming the field", () => {
    const observability = gateway({ access_log: { destination: "file" } }).observability;
    expect(v.parse(ConfigDocument, { ...document, observability }).observability).toEqual(observability);
    const bad = v.safeParse(ConfigDocument, {
      ...document,
      observability: { ...observability, access_log: { destination: "file", max_size: 1, max_files: 5 } },
    });
    expect(bad.success).toBe(false);
    expect(bad.issues?.[0]?.path?.map((p) => p.key)).toEqual(["observability", "access_log", "max_size"]);
  });
});
