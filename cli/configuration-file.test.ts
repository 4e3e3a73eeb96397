import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir, testIo } from "../test/support/cli-io.ts";
import { checkConfigurationFilename, loadConfigurationFile, parseFieldPath } from "./configuration-file.ts";
import { run } from "./run.ts";

function dirWith(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function loadError(text: string, overrides: { name?: string } = {}): string {
  const cwd = dirWith({ "gateway.dstack.yml": text });
  try {
    loadConfigurationFile("gateway.dstack.yml", cwd, overrides);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected the configuration to be rejected");
}

describe("checkConfigurationFilename", () => {
  it.each(["gateway.dstack.yml", "deploy/prod.dstack.yml", ".dstack.yml"])("accepts %s", (name) => {
    expect(() => checkConfigurationFilename(name)).not.toThrow();
  });

  it.each(["gateway.yml", "gateway.dstack.yaml", "gateway.dstack.yml.bak", "dstack.yml"])("refuses %s", (name) => {
    expect(() => checkConfigurationFilename(name)).toThrow(
      `${name}: configuration files must be named *.dstack.yml (e.g. gateway.dstack.yml)`,
    );
  });
});

describe("loadConfigurationFile", () => {
  it("returns the document as written and validated with defaults", () => {
    const cwd = dirWith({ "gw.dstack.yml": "type: gateway\nname: edge\nbackend: aws\nregion: eu-west-1\n" });
    const file = loadConfigurationFile("gw.dstack.yml", cwd);
    expect(file.path).toBe("gw.dstack.yml");
    expect(file.raw).toEqual({ type: "gateway", name: "edge", backend: "aws", region: "eu-west-1" });
    expect(file.configuration).toMatchObject({ name: "edge", public_ip: true, replicas: 1 });
  });

  it("reads paths relative to the working directory", () => {
    const cwd = dirWith({ "deploy/gw.dstack.yml": "type: gateway\nbackend: local\n" });
    expect(loadConfigurationFile("deploy/gw.dstack.yml", cwd).configuration).toMatchObject({ backend: "local" });
  });

  it("lets -n override the file's name", () => {
    const cwd = dirWith({ "gw.dstack.yml": "type: gateway\nname: edge\nbackend: local\n" });
    const file = loadConfigurationFile("gw.dstack.yml", cwd, { name: "other" });
    expect(file.raw.name).toBe("other");
    expect(file.configuration.name).toBe("other");
  });

  it("reports schema errors at the value's line and column", () => {
    const text =
      "type: gateway\nname: example\nbackend: aws\nregion: eu-west-1\nrouter:\n  type: sglang\n  policy: x\n";
    expect(loadError(text)).toBe(
      'gateway.dstack.yml:7:11: router.policy: expected one of cache_aware, power_of_two, random, round_robin, least_load, prefix_load, got "x"',
    );
  });

  it("reports unknown fields at the key, every problem on its own line", () => {
    const text =
      "type: gateway\nbackend: aws\nregion: eu-west-1\nreplica: 2\nrouter:\n  type: sglang\n  polcy: random\n";
    expect(loadError(text).split("\n")).toEqual([
      "gateway.dstack.yml:4:1: replica: unknown field",
      "gateway.dstack.yml:7:3: router.polcy: unknown field",
    ]);
  });

  it("reports a missing required field at the document", () => {
    expect(loadError("# edge gateway\ntype: gateway\nregion: eu-west-1\n")).toMatch(
      /^gateway\.dstack\.yml:2:1: backend: \S/,
    );
  });

  it("reports cross-field rules under the field to change", () => {
    const text = "type: gateway\nbackend: azure\nregion: westeurope\npublic_ip: false\ncertificate: null\n";
    expect(loadError(text)).toMatch(/^gateway\.dstack\.yml:4:12: public_ip: private gateways are not supported/);
  });

  it("blames -n, not the file, for an invalid name given on the command line", () => {
    expect(loadError("type: gateway\nname: fine\nbackend: local\n", { name: "Bad_Name" })).toMatch(
      /^-n\/--name: must start with a lowercase letter/,
    );
  });

  it("reports an empty file without a position", () => {
    expect(loadError("# nothing\n")).toBe(
      "gateway.dstack.yml: expected a mapping with type: gateway or service, got null",
    );
  });

  it("reports YAML syntax errors with their position", () => {
    expect(loadError("type: gateway\nbackend: aws\nbackend: gcp\n")).toBe(
      'gateway.dstack.yml:3:1: duplicate key "backend"',
    );
  });

  it("reports a missing file or a directory", () => {
    const cwd = dirWith({ "dir.dstack.yml/x": "" });
    expect(() => loadConfigurationFile("missing.dstack.yml", cwd)).toThrow("missing.dstack.yml: no such file");
    expect(() => loadConfigurationFile("dir.dstack.yml", cwd)).toThrow("dir.dstack.yml: is a directory");
  });
});

describe("loadConfigurationFile: the type decides the schema", () => {
  it("loads a service with its defaults", () => {
    const cwd = dirWith({ "svc.dstack.yml": "type: service\nname: echo\nhttps: false\n" });
    const file = loadConfigurationFile("svc.dstack.yml", cwd);
    expect(file.type).toBe("service");
    expect(file.raw).toEqual({ type: "service", name: "echo", https: false });
    expect(file.configuration).toMatchObject({ name: "echo", https: false, auth: true, replicas: { min: 1, max: 1 } });
  });

  it("lets -n override a service's name", () => {
    const cwd = dirWith({ "svc.dstack.yml": "type: service\nname: echo\n" });
    expect(loadConfigurationFile("svc.dstack.yml", cwd, { name: "other" }).configuration.name).toBe("other");
  });

  it.each([
    ["an unknown type", "name: echo\ntype: task\n", "gateway.dstack.yml:2:7: type: expected one of gateway, service"],
    ["a missing type", "# my service\nname: echo\n", "gateway.dstack.yml:2:1: type: expected one of gateway, service"],
    [
      "a type that is not a string",
      "type: [service]\n",
      "gateway.dstack.yml:1:7: type: expected one of gateway, service",
    ],
  ])("refuses %s, and reports nothing else", (_, text, expected) => {
    expect(loadError(text)).toBe(expected);
  });

  it("reports service errors at their line and column, in file order", () => {
    const text = [
      "type: service",
      "name: llama",
      "https: yes",
      "rate_limits:",
      "  - prefix: /v1",
      "    rps: 0",
      "replicas: 1..4",
      "scalng: {metric: rps, target: 10}",
      "",
    ].join("\n");
    expect(loadError(text).split("\n")).toEqual([
      'gateway.dstack.yml:3:8: https: expected one of true, false, auto, got "yes"',
      "gateway.dstack.yml:6:10: rate_limits[0].rps: must be at least 1/60 (one request a minute)",
      "gateway.dstack.yml:8:1: scalng: unknown field",
    ]);
  });

  it("reports a service's cross-field rule under the field to change", () => {
    expect(loadError("type: service\nname: llama\nreplicas: 0..4\n")).toBe(
      "gateway.dstack.yml:1:1: scaling: required when replicas is a range (min..max)",
    );
  });

  it("blames -n for an invalid service name", () => {
    expect(loadError("type: service\nname: echo\n", { name: "gateway" })).toBe(
      "-n/--name: gateway is reserved for the gateway's OpenAI-compatible entrypoint",
    );
  });

  it("describes a problem found later (by the control plane) at its field, or at the document", () => {
    const cwd = dirWith({ "svc.dstack.yml": "# echo\ntype: service\nname: echo\nrate_limits:\n  - rps: 5\n" });
    const file = loadConfigurationFile("svc.dstack.yml", cwd);
    expect(file.describe({ path: parseFieldPath("rate_limits[0].rps"), message: "too fast" })).toBe(
      "svc.dstack.yml:5:10: rate_limits[0].rps: too fast",
    );
    expect(file.describe({ path: ["https"], message: "needs a certificate" })).toBe(
      "svc.dstack.yml:2:1: https: needs a certificate",
    );
  });
});

describe("parseFieldPath", () => {
  it.each([
    ["https", ["https"]],
    ["rate_limits[0].key.header", ["rate_limits", 0, "key", "header"]],
    ["plan.spec.configuration.model.prefix", ["model", "prefix"]],
    ["spec.configuration.replicas", ["replicas"]],
  ])("%s", (field, path) => {
    expect(parseFieldPath(field)).toEqual(path);
  });
});

describe("configuration errors through the CLI", () => {
  it("prints one line per problem on stderr and exits 1 before contacting anyone", async () => {
    const cwd = dirWith({ "gateway.dstack.yml": "type: gateway\nbackend: aws\nregion: eu-west-1\ndomian: x.com\n" });
    // No settings at all: validation must fail first, so the user fixes the file before anything else.
    const io = testIo({ cwd });
    expect(await run(["apply", "-f", "gateway.dstack.yml"], io)).toBe(1);
    expect(io.stderr.text).toBe("gateway.dstack.yml:4:1: domian: unknown field\n");
    expect(io.stdout.text).toBe("");
  });

  it("refuses a file with the wrong name", async () => {
    const cwd = dirWith({ "gateway.yml": "type: gateway\nbackend: local\n" });
    const io = testIo({ cwd });
    expect(await run(["delete", "-f", "gateway.yml"], io)).toBe(1);
    expect(io.stderr.text).toBe(
      "gateway.yml: configuration files must be named *.dstack.yml (e.g. gateway.dstack.yml)\n",
    );
  });

  it("prints YAML errors as file:line:col", async () => {
    const cwd = dirWith({ "gateway.dstack.yml": "type: gateway\nname: [a\n" });
    const io = testIo({ cwd });
    expect(await run(["apply", "-f", "gateway.dstack.yml"], io)).toBe(1);
    expect(io.stderr.text).toMatch(/^gateway\.dstack\.yml:\d+:\d+: [^\n]+\n$/);
  });
});
