/**
 * Issue 11 item 5: strings from the server are printed escaped, whatever path prints them (tables,
 * key/value blocks, messages, prompts, errors, the live display); `--json` stays valid JSON.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

// Everything but the newline that ends a line; with `tty` the CLI's own bold/dim are allowed too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: asserting there are none.
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the CLI's own bold and dim.
const OWN_STYLE = /\x1b\[(?:1|2|22)m/g;
const EVIL = "eu\x1b[31m\0\nfake-line\x9b2J";
const SHOWN = "eu\\x1b[31m\\0\\nfake-line\\x9b2J";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  const gateway = fake.seed({ name: "edge", domain: "example.com" }, { status_message: `boom${EVIL}` });
  gateway.configuration.region = EVIL;
  gateway.replicas[0]!.region = EVIL;
  gateway.replicas[0]!.status_message = EVIL;
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], options: { stdin?: string; tty?: boolean } = {}) =>
  runCli(argv, testIo({ env: fake.env, ...options }));

describe("terminal injection", () => {
  it("gateway list prints a region with ESC, NUL and a newline escaped", async () => {
    const { code, stdout } = await gateplane(["gateway", "list", "-v"]);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(RAW_CONTROL);
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`aws      ${SHOWN}  edge`);
  });

  it("keeps the CLI's own styling on a terminal but escapes the server's", async () => {
    const { stdout } = await gateplane(["gateway", "list"], { tty: true });
    const unstyled = stdout.replace(OWN_STYLE, "");
    expect(unstyled).not.toMatch(RAW_CONTROL);
    expect(stdout).toContain("\x1b[1mBACKEND");
  });

  it("gateway get and the delete prompt escape too", async () => {
    const get = await gateplane(["gateway", "get", "edge"]);
    expect(get.stdout).not.toMatch(RAW_CONTROL);
    const del = await gateplane(["gateway", "delete", "edge"], { stdin: "n\n" });
    expect(del.stdout).not.toMatch(RAW_CONTROL);
  });

  it("--json is valid JSON of the same value, without raw control characters", async () => {
    const { stdout } = await gateplane(["gateway", "list", "--json"]);
    expect(stdout.replace(/\n/g, "")).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(stdout).gateways[0].configuration.region).toBe(EVIL);
  });

  it("an error message from the server is escaped on stderr", async () => {
    const { code, stderr } = await gateplane(["gateway", "get", `no${EVIL}`]);
    expect(code).toBe(1);
    // Newlines stay: the API separates a body's field issues with them.
    expect(stderr).not.toMatch(RAW_CONTROL);
    expect(stderr).toContain("eu\\x1b[31m\\0\nfake-line\\x9b2J");
  });

  it("webhook messages and key/value blocks escape", async () => {
    const hook = fake.webhooks.seed({ url: `https://e.com/${EVIL}`, description: EVIL });
    for (const argv of [
      ["webhook", "list"],
      ["webhook", "get", hook.id],
    ]) {
      const { stdout } = await gateplane(argv);
      expect(stdout).not.toMatch(RAW_CONTROL);
      expect(stdout).toContain(SHOWN);
    }
  });
});
