import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

// `service get` of a PD service against the fake control plane, whose `pd` view is the real one's
// (schema/service.ts `pdView`): per role the replicas and their bootstrap ports, and whether the
// service can route.

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com" }, { default: true });
  fake.seedService({
    name: "llama",
    model: "meta-llama/Llama-3.1-8B-Instruct",
    router: { type: "sglang", pd_disaggregation: true, decode_policy: "round_robin" },
  });
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (...argv: string[]) => runCli(argv, testIo({ env: fake.env }));

describe("service get of a PD service", () => {
  it("says it cannot route until it has a replica of each role, then lists them per role with bootstrap ports", async () => {
    const add = (...rest: string[]) => gateplane("service", "replica", "add", "llama", ...rest);
    await add("--id", "d1", "--url", "http://10.0.0.6:30002", "--role", "decode");
    const before = await gateplane("service", "get", "llama");
    expect(before.stderr).toBe("");
    expect(before.stdout).toContain(
      "\nPrefill/decode: 0 prefill, 1 decode; not routable: service llama disaggregates prefill and decode and needs at least one replica of each role (has 0 prefill, 1 decode)\n",
    );

    await add("--id", "p1", "--url", "http://10.0.0.5:30001", "--role", "prefill", "--bootstrap-port", "8998");
    await add("--id", "p2", "--url", "http://10.0.0.7:30001", "--role", "prefill");
    const { stdout } = await gateplane("service", "get", "llama");
    const section = stdout.slice(stdout.indexOf("\nPrefill/decode:") + 1).split("\n");
    expect(section.slice(0, 5).map((l) => l.trimEnd())).toEqual([
      "Prefill/decode: 2 prefill, 1 decode; routable",
      "ROLE     REPLICA  URL                    BOOTSTRAP PORT",
      "prefill  p1       http://10.0.0.5:30001  8998",
      "prefill  p2       http://10.0.0.7:30001  none",
      "decode   d1       http://10.0.0.6:30002  -",
    ]);
    const json = JSON.parse((await gateplane("service", "get", "llama", "--json")).stdout);
    expect(json.pd).toEqual({ prefill: 2, decode: 1, routable: true, reason: null });
  });

  it("has no such section for other services", async () => {
    fake.seedService({ name: "plain", router: { type: "sglang" } }, [{ id: "r1", url: "http://10.0.0.5:8000" }]);
    const { stdout } = await gateplane("service", "get", "plain");
    expect(stdout).not.toContain("Prefill/decode");
    expect(JSON.parse((await gateplane("service", "get", "plain", "--json")).stdout).pd).toBeNull();
  });
});
