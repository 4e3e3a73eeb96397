/**
 * Issue 11 item 13: backends' credentials and the DNS provider from the CLI. Secrets come from a
 * file, stdin or a named environment variable; a flag that would carry one is refused, and nothing
 * is sent.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, tempDir, testIo } from "../test/support/cli-io.ts";

const AWS = { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "wJalrXUtnFEMI/K7MDENG" };
const ZONE = "0123456789abcdef0123456789abcdef";

let fake: FakeControlPlane;
let cwd: string;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  cwd = tempDir();
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], options: { stdin?: string; env?: Record<string, string> } = {}) =>
  runCli(argv, testIo({ env: { ...fake.env, ...options.env }, stdin: options.stdin, cwd }));
const stored = (kind: string) => fake.accounts.credentials.get("main")?.get(kind)?.value;

describe("backend", () => {
  it("lists which backends are configured", async () => {
    const { code, stdout } = await gateplane(["backend"]);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n")).toEqual([
      "TYPE        CONFIGURED  UPDATED",
      "aws         no",
      "gcp         no",
      "azure       no",
      "kubernetes  no",
      "local       yes",
    ]);
  });

  it("set reads the credentials from a file, from stdin or from a named variable", async () => {
    writeFileSync(join(cwd, "aws.json"), JSON.stringify(AWS));
    const fromFile = await gateplane(["backend", "set", "aws", "--credentials-file", "aws.json"]);
    expect(fromFile).toMatchObject({ code: 0, stdout: "Credentials of the aws backend saved for main\n", stderr: "" });
    expect(stored("aws")).toEqual(AWS);
    expect(fake.requests.at(-1)).toMatchObject({ method: "PUT", path: "/api/v1/projects/main/backends/aws" });

    const kube = { server: "https://k8s.example.com:6443", token: "kube-secret" };
    const fromStdin = await gateplane(["backend", "set", "kubernetes", "--credentials-file", "-"], {
      stdin: JSON.stringify(kube),
    });
    expect(fromStdin.code).toBe(0);
    expect(stored("kubernetes")).toEqual({ ...kube, namespace: "default" });

    const fromEnv = await gateplane(["backend", "set", "aws", "--credentials-env", "AWS_CREDS", "--json"], {
      env: { AWS_CREDS: JSON.stringify({ ...AWS, vpc_id: "vpc-1" }) },
    });
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ type: "aws", configured: true });
    expect(stored("aws")).toEqual({ ...AWS, vpc_id: "vpc-1" });
    // The secret is never echoed back.
    for (const run of [fromFile, fromStdin, fromEnv]) expect(run.stdout).not.toContain("wJalr");
  });

  it("refuses a secret on the command line, and sends nothing", async () => {
    for (const flag of ["--credentials", "--secret-access-key=wJalr", "--client-secret"]) {
      const { code, stderr } = await gateplane(["backend", "set", "aws", flag, "x"]);
      expect(code).toBe(2);
      expect(stderr).toMatch(
        /^gateplane backend set: --[a-z-]+ would put a secret on the command line, where other users see it \(ps\)/,
      );
      expect(stderr).toContain("give --credentials-file PATH (- for stdin) or --credentials-env NAME");
      expect(stderr).not.toContain("wJalr");
    }
    const none = await gateplane(["backend", "set", "aws"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("read from --credentials-file PATH (- for stdin) or --credentials-env NAME");
    expect(fake.requests).toEqual([]);
  });

  it("shows the control plane's field-named errors and bad files clearly", async () => {
    writeFileSync(join(cwd, "bad.json"), JSON.stringify({ access_key_id: "nope", secret_access_key: "x" }));
    const bad = await gateplane(["backend", "set", "aws", "--credentials-file", "bad.json"]);
    expect(bad).toMatchObject({ code: 1, stderr: "access_key_id: expected an AWS access key id\n" });
    const local = await gateplane(["backend", "set", "local", "--credentials-file", "bad.json"]);
    expect(local.stderr).toBe("the local backend needs no credentials\n");
    const type = await gateplane(["backend", "set", "ibm", "--credentials-file", "bad.json"]);
    expect(type.stderr).toBe("type: expected one of aws, gcp, azure, kubernetes, local\n");
    writeFileSync(join(cwd, "broken.json"), "{");
    const broken = await gateplane(["backend", "set", "aws", "--credentials-file", "broken.json"]);
    expect(broken.stderr).toMatch(/^gateplane backend set: broken\.json: not valid JSON \(/);
    const missing = await gateplane(["backend", "set", "aws", "--credentials-env", "UNSET"]);
    expect(missing.stderr).toBe(
      "gateplane backend set: --credentials-env: the environment variable UNSET is not set\n",
    );
    // The secret itself where the variable's name goes: refused without echoing it.
    const value = await gateplane(["backend", "set", "aws", "--credentials-env", '{"secret_access_key":"wJalr"}']);
    expect(value).toMatchObject({
      code: 2,
      stderr: "gateplane backend set: --credentials-env takes the name of an environment variable, not a value\n",
    });
    const lower = await gateplane(["backend", "set", "aws", "--credentials-env", "cfTokenAbc123"]);
    expect(lower.stderr).toBe("gateplane backend set: --credentials-env: the environment variable named is not set\n");
    const nofile = await gateplane(["backend", "set", "aws", "--credentials-file", "nope.json"]);
    expect(nofile.stderr).toBe(`gateplane backend set: --credentials-file ${join(cwd, "nope.json")}: no such file\n`);
  });

  it("unset asks first and removes", async () => {
    writeFileSync(join(cwd, "aws.json"), JSON.stringify(AWS));
    await gateplane(["backend", "set", "aws", "--credentials-file", "aws.json"]);
    const no = await gateplane(["backend", "unset", "aws"], { stdin: "n\n" });
    expect(no.stdout).toContain("Remove the aws backend's credentials from main?");
    expect(stored("aws")).toEqual(AWS);
    const yes = await gateplane(["backend", "unset", "aws", "-y"]);
    expect(yes.stdout).toBe("Credentials of the aws backend removed from main\n");
    expect(stored("aws")).toBeUndefined();
  });
});

describe("dns", () => {
  it("get shows cloudflare by default; set takes the token from a named variable", async () => {
    const before = await gateplane(["dns"]);
    expect(before.stdout).toMatch(/^Provider +cloudflare\nConfigured +no\n/);
    const set = await gateplane(["dns", "set", "cloudflare", "--zone-id", ZONE, "--token-env", "CF_TOKEN"], {
      env: { CF_TOKEN: "cf-secret-token" },
    });
    expect(set).toMatchObject({
      code: 0,
      stderr: "",
      stdout: "cloudflare DNS credentials saved for main: its gateways create their DNS records\n",
    });
    expect(stored("dns:cloudflare")).toEqual({ api_token: "cf-secret-token", zone_id: ZONE });
    const json = JSON.parse((await gateplane(["dns", "get", "cloudflare", "--json"])).stdout);
    expect(json).toMatchObject({ provider: "cloudflare", configured: true });
    expect(JSON.stringify(json)).not.toContain("cf-secret");
  });

  it("set reads a whole credentials object from stdin", async () => {
    const creds = { api_token: "cf-2", zone_id: ZONE, api_endpoint: "http://127.0.0.1:1/client/v4" };
    const { code } = await gateplane(["dns", "set", "cloudflare", "--credentials-file", "-"], {
      stdin: JSON.stringify(creds),
    });
    expect(code).toBe(0);
    expect(stored("dns:cloudflare")).toEqual(creds);
  });

  it("refuses the token on the command line, --token included (it would go to the control plane)", async () => {
    for (const argv of [
      ["dns", "set", "cloudflare", "--zone-id", ZONE, "--token", "cf-secret"],
      ["dns", "set", "cloudflare", "--api-token=cf-secret"],
    ]) {
      const { code, stderr } = await gateplane(argv);
      expect(code).toBe(2);
      expect(stderr).toContain("would put a secret on the command line");
      expect(stderr).toContain("--token-env NAME or --credentials-file PATH (- for stdin)");
      expect(stderr).not.toContain("cf-secret");
    }
    expect(fake.requests).toEqual([]);
  });

  it("shows field-named errors, and unset removes", async () => {
    const bad = await gateplane(["dns", "set", "cloudflare", "--zone-id", "abc", "--token-env", "T"], {
      env: { T: "x" },
    });
    expect(bad).toMatchObject({ code: 1, stderr: "zone_id: expected a 32-character hex zone id\n" });
    const provider = await gateplane(["dns", "get", "route53"]);
    expect(provider.stderr).toBe("provider: expected one of cloudflare\n");
    await gateplane(["dns", "set", "cloudflare", "--zone-id", ZONE, "--token-env", "T"], { env: { T: "x" } });
    const unset = await gateplane(["dns", "unset", "cloudflare", "-y"]);
    expect(unset.stdout).toBe("cloudflare DNS credentials removed from main\n");
    expect(stored("dns:cloudflare")).toBeUndefined();
  });
});
