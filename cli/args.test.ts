import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli, testIo } from "../test/support/cli-io.ts";
import { splitCommandLine } from "./args.ts";

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

async function cli(argv: string[]) {
  const { code, stdout, stderr } = await runCli(argv, testIo());
  return { code, stdout, stderr };
}

describe("splitCommandLine", () => {
  it("takes connection options before the command", () => {
    expect(splitCommandLine(["--api-url", "http://x:1", "-p", "prod", "gateway", "list", "-v"])).toEqual({
      global: { "api-url": "http://x:1", project: "prod" },
      command: "gateway",
      rest: ["list", "-v"],
    });
    expect(splitCommandLine(["--token=abc", "apply"]).global).toEqual({ token: "abc" });
  });

  it("rejects command options before the command", () => {
    expect(() => splitCommandLine(["-y", "apply"])).toThrow("gateplane: unknown option '-y' (see gateplane --help)");
    expect(() => splitCommandLine(["--api-url"])).toThrow("gateplane: option '--api-url' needs a value");
  });

  // Issue 11 item 17: --url was the control plane's here and the replica's in service replica add.
  it("refuses --url as a connection option, pointing at --api-url", async () => {
    const hint = "--url is not a connection option: give the control plane's URL with --api-url URL (or GATEPLANE_URL)";
    expect(() => splitCommandLine(["--url", "http://x:1", "gateway"])).toThrow(`gateplane: ${hint}`);
    for (const argv of [
      ["gateway", "list", "--url", "http://x:1"],
      ["service", "get", "echo", "--url=http://x:1"],
      ["apply", "-f", "x.yml", "--url", "http://x:1"],
      ["service", "replica", "list", "echo", "--url", "http://x:1"],
    ]) {
      const { code, stderr } = await cli(argv);
      expect(code).toBe(2);
      expect(stderr).toContain(hint);
    }
  });
});

describe("help and version", () => {
  it("prints the version", async () => {
    expect(await cli(["--version"])).toEqual({ code: 0, stdout: `gateplane ${PACKAGE_VERSION}\n`, stderr: "" });
  });

  it("prints the overview for --help and for no command", async () => {
    for (const argv of [["--help"], ["-h"], []]) {
      const { code, stdout } = await cli(argv);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: gateplane /);
      expect(stdout).toContain("apply -f FILE");
      expect(stdout).toContain("GATEPLANE_CONFIG");
    }
  });

  it("prints each command's help without needing settings", async () => {
    const apply = await cli(["apply", "--help"]);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toMatch(/^Usage: gateplane apply -f FILE \[-y\] \[--force\] \[-d\] \[-n NAME\] \[-v\]/);
    expect((await cli(["delete", "-h"])).stdout).toMatch(/^Usage: gateplane delete -f FILE \[-y\]/);
    expect((await cli(["gateway", "--help"])).stdout).toMatch(/^Usage: gateplane gateway \[list\]/);
    expect((await cli(["gateway", "delete", "--help"])).stdout).toMatch(/^Usage: gateplane gateway/);
    expect((await cli(["--help", "apply"])).stdout).toMatch(/^Usage: gateplane apply/);
  });
});

describe("argument errors", () => {
  it.each([
    [["frobnicate"], "gateplane: unknown command 'frobnicate' (see gateplane --help)"],
    [["apply"], "gateplane apply: -f FILE is required (e.g. gateplane apply -f gateway.dstack.yml)"],
    [["apply", "-f"], "gateplane apply: option '-f, --file <value>' argument missing (see gateplane apply --help)"],
    [
      ["apply", "-f", "g.dstack.yml", "--json"],
      "gateplane apply: unknown option '--json' (see gateplane apply --help)",
    ],
    [["apply", "-f", "g.dstack.yml", "extra"], "gateplane apply: unexpected argument 'extra'"],
    [["delete"], "gateplane delete: -f FILE is required (e.g. gateplane delete -f gateway.dstack.yml)"],
    [["gateway", "remove", "x"], "gateplane gateway: unknown command 'remove'; expected list, get, delete or update"],
    [["gateway", "get"], "gateplane gateway get: NAME is required"],
    [["gateway", "delete", "a", "b"], "gateplane gateway delete: unexpected argument 'b'"],
    [
      ["gateway", "delete", "other/gw"],
      "gateplane gateway delete: 'other/gw': give the project with -p, not in the name",
    ],
    [["gateway", "list", "-w", "--json"], "gateplane gateway list: --watch cannot be combined with JSON output"],
    [["gateway", "list", "--format", "yaml"], "gateplane gateway list: --format must be plain or json, got 'yaml'"],
    [
      ["gateway", "delete", "gw", "--set-default"],
      "gateplane gateway delete: unknown option '--set-default' (see gateplane gateway delete --help)",
    ],
  ])("%j → %s", async (argv, message) => {
    const { code, stdout, stderr } = await cli(argv);
    expect(code).toBe(2);
    expect(stderr).toBe(`${message}\n`);
    expect(stdout).toBe("");
  });

  it("asks for --set-default when gateway update has nothing to do", async () => {
    const { code, stderr } = await cli(["gateway", "update", "gw"]);
    expect(code).toBe(2);
    expect(stderr).toBe("gateplane gateway update: nothing to change; pass --set-default\n");
  });

  it("explains missing settings in one line", async () => {
    const { code, stderr } = await cli(["gateway", "list"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^no control plane url, token and project configured: run `npm start`[^\n]*\n$/);
  });
});
