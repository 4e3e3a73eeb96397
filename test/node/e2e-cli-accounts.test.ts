/**
 * Issue 11 item 13 against the real Worker: the account commands (user, token, member, project,
 * backend, dns) through the CLI (in-process: `cliWith`) and the `npm start` stack's control plane,
 * so the CLI and the routes it calls cannot drift apart (the unit tests use a fake).
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { type CliResult, cliWith } from "../support/stack.ts";

const ZONE = "0123456789abcdef0123456789abcdef";

let stack: SharedStack;
let dir: string;
/** Users are global in the control plane: this file's user is bob, named after its project. */
let name: string;

/** `gateplane` with the stack's settings, overridden by `env` (another user's token, a secret). */
const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => cliWith(stack, args, env);

beforeAll(async () => {
  stack = await sharedStack("accounts");
  dir = stack.dir;
  name = stack.scoped("bob");
}, 120_000);

afterAll(async () => {
  await stack?.release();
}, 60_000);

describe("account commands against the real Worker", () => {
  it("creates a user, makes them a member, and that user manages their own tokens", async () => {
    const created = await cli(["user", "create", name, "--json"]);
    expect(created.stderr).toBe("");
    const bob = JSON.parse(created.stdout) as { id: string; user: string; token: string };
    expect(bob).toMatchObject({ user: name, token: expect.stringMatching(/^gpt_/) });

    const added = await cli(["member", "add", name]);
    expect(added).toMatchObject({ code: 0, stdout: `${name} is a member of ${stack.project} with the member role\n` });
    expect((await cli(["member", "list"])).stdout).toMatch(new RegExp(`^${name} +member `, "m"));

    const asBob = { GATEPLANE_TOKEN: bob.token };
    expect((await cli(["user", "whoami"], asBob)).stdout).toBe(`${name}\n`);
    expect((await cli(["project"], asBob)).stdout).toMatch(new RegExp(`^${stack.project} +member`, "m"));
    const second = await cli(["token", "create", "--description", "laptop"], asBob);
    expect(second.stdout).toMatch(new RegExp(`^Token (\\w+) created for ${name}\n`));
    const id = /^Token (\w+) created/.exec(second.stdout)![1]!;
    // bob is not a project admin: the Worker's own refusal, as the CLI shows it.
    const refused = await cli(["member", "remove", name, "-y"], asBob);
    expect(refused).toMatchObject({
      code: 1,
      stderr: `This action needs the admin role in project ${stack.project}\n`,
    });
    expect(await cli(["token", "revoke", bob.id, "-y"], asBob)).toMatchObject({ code: 0 });
    const revoked = await cli(["user", "whoami"], asBob);
    expect(revoked.code).toBe(1);
    expect((await cli(["token", "revoke", id, "-y"])).code).toBe(0);
    const tokens = await cli(["token", "list", "--user", name]);
    expect(tokens.stdout).toMatch(new RegExp(`^${bob.id} +created with the user .* ago$`, "m"));
    expect(tokens.stdout).toMatch(new RegExp(`^${id} +laptop .* ago$`, "m"));
    expect(tokens.stdout).not.toContain("gpt_");
    expect((await cli(["user", "list"])).stdout).toMatch(new RegExp(`^${name} +\\d`, "m"));
    // A dozen runs of the bin, each a fresh Node process; slow on a busy machine.
  }, 120_000);

  it("sets and removes the DNS provider with the token from the environment, and lists backends", async () => {
    const set = await cli(["dns", "set", "cloudflare", "--zone-id", ZONE, "--token-env", "CF_TOKEN"], {
      CF_TOKEN: "cf-e2e-token",
    });
    expect(set.stderr).toBe("");
    expect(set.code).toBe(0);
    const got = JSON.parse((await cli(["dns", "--json"])).stdout);
    expect(got).toMatchObject({ provider: "cloudflare", configured: true });
    const bad = await cli(["dns", "set", "cloudflare", "--zone-id", "nope", "--token-env", "CF_TOKEN"], {
      CF_TOKEN: "x",
    });
    expect(bad).toMatchObject({ code: 1, stderr: "zone_id: expected a 32-character hex zone id\n" });
    const unset = await cli(["dns", "unset", "cloudflare", "-y"]);
    expect(unset.stderr).toBe("");
    expect(unset.code).toBe(0);
    expect(JSON.parse((await cli(["dns", "--json"])).stdout).configured).toBe(false);
    const backends = await cli(["backend"]);
    expect(backends.stdout).toMatch(/^local +yes/m);
    expect(backends.stdout).toMatch(/^aws +no/m);
  }, 120_000);

  it("takes the control plane's URL from --api-url and refuses --url", async () => {
    // No settings file to fall back on: the URL can only come from the flag.
    const env = { GATEPLANE_CONFIG: path.join(dir, "none.json"), GATEPLANE_URL: "", GATEPLANE_TOKEN: stack.token };
    const viaFlag = await cli(["--api-url", stack.url, "member", "list", "-p", stack.project], env);
    expect(viaFlag.stderr).toBe("");
    expect(viaFlag.stdout).toMatch(/^USER +ROLE +ADDED$/m);
    const old = await cli(["--url", stack.url, "user", "whoami"]);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain("--api-url");
    // Two real CLI runs: ~1 s each alone, up to ~15 s each with another suite beside this one.
  }, 60_000);
});
