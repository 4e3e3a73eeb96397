import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

// `service get` shows each replica's health as the control plane reports it; none: prints as before.

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com", certificate: null, replicas: 1 }, { default: true });
  fake.seedService({ name: "llama", model: "meta-llama/Llama-3.1-8B-Instruct" }, [
    { id: "r1", url: "http://10.0.0.5:8000" },
    { id: "r2", url: "http://10.0.0.6:8000" },
    { id: "r3", url: "http://10.0.0.7:8000" },
  ]);
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = async (...argv: string[]) => {
  const result = await runCli(argv, testIo({ env: fake.env }));
  expect(result.stderr).toBe("");
  return result;
};

describe("service get: replica health", () => {
  it("shows each replica's state, breaker and last check, then why the unhealthy ones fail", async () => {
    fake.reportHealth("llama", "r1", { state: "healthy", circuit: "closed", last_check: "pass", error: null });
    fake.reportHealth("llama", "r2", {
      state: "unhealthy",
      circuit: "half_open",
      last_check: "fail",
      error: "GET http://10.0.0.6:8000/health answered 503\n\x1b[31mx",
    });
    const { stdout } = await gateplane("service", "get", "llama");
    const lines = stdout.trimEnd().split("\n");
    const at = lines.findIndex((l) => l.startsWith("REPLICA  HEALTH"));
    expect(lines.slice(at, at + 7)).toEqual([
      "REPLICA  HEALTH        CIRCUIT    LAST CHECK",
      "r1       healthy       closed     pass",
      "r2       unhealthy     half-open  fail",
      "r3       not reported",
      "",
      "Health errors:",
      "  r2: GET http://10.0.0.6:8000/health answered 503 \\x1b[31mx",
    ]);
  });

  it("prints nothing when no replica has a health report", async () => {
    const { stdout } = await gateplane("service", "get", "llama");
    expect(stdout).not.toContain("HEALTH");
  });
});
