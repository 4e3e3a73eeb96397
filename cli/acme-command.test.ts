import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

const HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], env: Record<string, string> = {}) =>
  runCli(argv, testIo({ env: { ...fake.env, ...env } }));

describe("acme", () => {
  it("sets the EAB with the HMAC key from the environment, and never prints it", async () => {
    const set = await gateplane(
      [
        "acme",
        "set",
        "--directory",
        "https://acme.zerossl.test/v2/DV90",
        "--eab-kid",
        "kid-1",
        "--email",
        "ops@example.test",
      ],
      { GATEPLANE_ACME_EAB_HMAC_KEY: HMAC },
    );
    expect(set.stderr).toBe("");
    expect(set.code).toBe(0);
    expect(set.stdout).toBe("ACME settings of main saved: https://acme.zerossl.test/v2/DV90, EAB kid kid-1\n");
    expect(fake.acme).toEqual({
      directory_url: "https://acme.zerossl.test/v2/DV90",
      eab: { kid: "kid-1", hmac_key: HMAC },
      email: "ops@example.test",
    });
    const get = await gateplane(["acme"]);
    expect(get.stdout.trimEnd().split("\n")).toEqual([
      "directory  https://acme.zerossl.test/v2/DV90",
      "eab        kid kid-1 (HMAC key set)",
      "email      ops@example.test",
    ]);
    const json = await gateplane(["acme", "get", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ has_eab: true, eab_kid: "kid-1" });
    for (const out of [set, get, json]) expect(out.stdout + out.stderr).not.toContain(HMAC);
    const unset = await gateplane(["acme", "unset"]);
    expect(unset.code).toBe(0);
    expect(fake.acme).toBeNull();
  });

  it("refuses a kid without the key, and bad settings with the field named, changing nothing", async () => {
    const noKey = await gateplane(["acme", "set", "--eab-kid", "kid-1"]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain("--eab-kid needs the HMAC key in GATEPLANE_ACME_EAB_HMAC_KEY");
    const bad = await gateplane(["acme", "set", "--directory", "http://acme.test/dir"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("directory_url");
    expect(fake.acme).toBeNull();
    expect((await gateplane(["acme", "renew"])).stderr).toContain("expected get, set or unset");
  });
});
