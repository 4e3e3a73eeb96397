import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { configService } from "../durable-objects/config-service.ts";
import { ConfigService } from "./config-document.ts";
import { planService } from "./plan.ts";
import { DEFAULT_RETRIES } from "./resilience.ts";
import { parseServiceConfiguration, type ServiceConfiguration, storedServiceConfiguration } from "./service.ts";

// `retries:` and `admission:` of a service (docs/resilience.md).

const service = (extra: Record<string, unknown> = {}) =>
  parseServiceConfiguration({ type: "service", name: "llama", ...extra });

describe("retries: of a service", () => {
  it("absent is null (the defaults: 3 attempts, 429/502/503/504, resets, timeouts, 20 % + 3/s)", () => {
    expect(service().retries).toBeNull();
    expect(DEFAULT_RETRIES).toEqual({
      attempts: 3,
      statuses: [429, 502, 503, 504],
      on_reset: true,
      on_timeout: true,
      budget_percent: 20,
      budget_min_per_second: 3,
    });
  });

  it("fills what a mapping leaves out with the defaults", () => {
    expect(service({ retries: { statuses: [500, 503] } }).retries).toEqual({
      ...DEFAULT_RETRIES,
      statuses: [500, 503],
    });
    expect(service({ retries: {} }).retries).toEqual(DEFAULT_RETRIES);
  });

  it.each<[unknown, string]>([
    [{ attempts: 0 }, "retries.attempts: must be at least 1"],
    [{ attempts: 11 }, "retries.attempts: must be at most 10"],
    [{ statuses: [200] }, "retries.statuses[0]: must be at least 400"],
    [{ statuses: "503" }, "retries.statuses"],
    [{ budget_percent: 101 }, "retries.budget_percent: must be at most 100"],
    [{ budget_min_per_second: -1 }, "retries.budget_min_per_second: must be at least 0"],
    [{ on_reset: "yes" }, "retries.on_reset: expected true or false"],
    [{ retry_on: [] }, "retries.retry_on"],
  ])("refuses %j, naming the field", (retries, message) => {
    expect(() => service({ retries })).toThrow(message);
  });
});

describe("admission: of a service", () => {
  it("absent is null (no limit); a mapping needs max_concurrency and defaults the queue", () => {
    expect(service().admission).toBeNull();
    expect(service({ admission: { max_concurrency: 8 } }).admission).toEqual({
      max_concurrency: 8,
      queue_size: 100,
      queue_timeout: 30,
      priority_header: null,
    });
    expect(() => service({ admission: {} })).toThrow("admission.max_concurrency: required field is missing");
  });

  it.each<[unknown, string]>([
    [{ max_concurrency: 0 }, "admission.max_concurrency: must be at least 1"],
    [{ max_concurrency: 1, queue_size: -1 }, "admission.queue_size: must be at least 0"],
    [{ max_concurrency: 1, queue_timeout: "10m" }, "admission.queue_timeout"],
    [{ max_concurrency: 1, priority_header: "x priority" }, "admission.priority_header"],
  ])("refuses %j, naming the field", (admission, message) => {
    expect(() => service({ admission })).toThrow(message);
  });

  it("reaches the configuration document, which takes it (queue_timeout in ms)", () => {
    const c = service({
      admission: { max_concurrency: 4, queue_size: 10, queue_timeout: "2s", priority_header: "X-Priority" },
      retries: { attempts: 2 },
    });
    const gateway = { project_name: "main", configuration: { domain: null, router: null, certificate: null } };
    const doc = configService(gateway, "example.test", { name: "llama", configuration: c }, []);
    expect(doc.admission).toEqual({
      max_concurrency: 4,
      queue_size: 10,
      queue_timeout_ms: 2000,
      priority_header: "X-Priority",
    });
    expect(doc.retries).toEqual({ ...DEFAULT_RETRIES, attempts: 2 });
    expect(v.safeParse(ConfigService, doc).success).toBe(true);
  });

  it("a service stored before these fields shows no change; setting them changes in place", () => {
    const { retries: _r, admission: _a, ...old } = service();
    const stored = storedServiceConfiguration(old as ServiceConfiguration);
    expect(planService({ gateway: "edge", configuration: stored }, service(), "edge")).toMatchObject({
      changes: [],
    });
    expect(
      planService({ gateway: "edge", configuration: stored }, service({ admission: { max_concurrency: 2 } }), "edge"),
    ).toMatchObject({ action: "update", in_place: true });
  });
});
