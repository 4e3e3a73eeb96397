import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Service } from "../schema/service-api.ts";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, type TestIo, testIo } from "../test/support/cli-io.ts";
import { HELP } from "./help.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com" }, { default: true });
  fake.seed({ name: "local-gateway", backend: "local", domain: "localhost" });
  fake.seedService({ name: "llama", model: "meta-llama/Llama-3.1-8B-Instruct" }, [
    { id: "r1", url: "http://10.0.0.5:8000" },
    { id: "r2", url: "http://10.0.0.6:8000" },
  ]);
  fake.seedService({ name: "echo", gateway: "local-gateway", https: false });
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], options: { stdin?: string; io?: TestIo } = {}) =>
  runCli(argv, options.io ?? testIo({ env: fake.env, stdin: options.stdin }));

describe("service list", () => {
  it("is the default and prints every service with its CONFIG state", async () => {
    const bare = await gateplane(["service"]);
    const explicit = await gateplane(["service", "list"]);
    expect(bare.stderr).toBe("");
    expect(bare.code).toBe(0);
    expect(bare.stdout).toBe(explicit.stdout);
    expect(bare.stdout.trimEnd().split("\n")).toEqual([
      "NAME   GATEWAY        URL                          REPLICAS  CONFIG",
      "llama  edge           https://llama.example.com    2         v2 applied",
      "echo   local-gateway  http://echo.localhost:45531  0         v1 applied",
    ]);
    expect(fake.calls()).toEqual(["GET /api/v1/projects/main/services", "GET /api/v1/projects/main/services"]);
  });

  it("shows configurations the gateways have not taken, or refused", async () => {
    fake.agentState = "pending";
    await gateplane(["service", "replica", "add", "echo", "--id", "r1", "--url", "http://127.0.0.1:9001"]);
    fake.agentState = "rejected";
    await gateplane(["service", "replica", "add", "llama", "--id", "r3", "--url", "http://10.0.0.7:8000"]);
    const { stdout } = await gateplane(["service", "list"]);
    expect(stdout).toMatch(
      /\nllama +edge +https:\/\/llama\.example\.com +3 +v3 rejected: upstream llama: invalid replica URL\n/,
    );
    expect(stdout).toMatch(/\necho +local-gateway +http:\/\/echo\.localhost:45531 +1 +v2 pending \(0\/1\)\n/);
  });

  it("adds MODEL and CREATED with -v", async () => {
    const { stdout } = await gateplane(["service", "list", "-v"]);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/ CONFIG +MODEL +CREATED$/);
    expect(lines[1]).toMatch(/ v2 applied +meta-llama\/Llama-3\.1-8B-Instruct +\d+ sec ago$/);
    expect(lines[2]).toMatch(/ v1 applied +\d+ sec ago$/);
  });

  it("prints {project, services} with --json and --format json", async () => {
    for (const flag of [["--json"], ["--format", "json"]]) {
      const { code, stdout } = await gateplane(["service", "list", ...flag]);
      expect(code).toBe(0);
      const body = JSON.parse(stdout) as { project: string; services: Service[] };
      expect(Object.keys(body)).toEqual(["project", "services"]);
      expect(body.project).toBe("main");
      expect(body.services.map((s) => [s.name, s.replicas.length, s.model_url])).toEqual([
        ["llama", 2, "https://gateway.example.com/v1"],
        ["echo", 0, null],
      ]);
    }
  });

  it("prints only the header for a project without services", async () => {
    fake.services.clear();
    const { code, stdout } = await gateplane(["service", "list"]);
    expect(code).toBe(0);
    expect(stdout).toBe("NAME  GATEWAY  URL  REPLICAS  CONFIG\n");
  });

  it("refuses an unknown --format", async () => {
    const { code, stderr } = await gateplane(["service", "list", "--format", "yaml"]);
    expect(code).toBe(2);
    expect(stderr).toBe("gateplane service list: --format must be plain or json, got 'yaml'\n");
    expect(fake.requests).toEqual([]);
  });

  it("takes the project from -p, before or after the command", async () => {
    for (const argv of [
      ["-p", "elsewhere", "service", "list"],
      ["service", "list", "-p", "elsewhere"],
    ]) {
      const { code, stderr } = await gateplane(argv);
      expect(code).toBe(1);
      expect(stderr).toBe("Project elsewhere does not exist\n");
    }
  });
});

describe("service get", () => {
  it("prints the service as JSON", async () => {
    const { code, stdout } = await gateplane(["service", "get", "llama", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      name: "llama",
      gateway: "edge",
      url: "https://llama.example.com",
      replicas: [{ id: "r1" }, { id: "r2" }],
      config_version: 2,
    });
  });

  it("prints a one-row table without --json", async () => {
    const { stdout } = await gateplane(["service", "get", "echo"]);
    expect(stdout.trimEnd().split("\n")).toEqual([
      "NAME  GATEWAY        URL                          REPLICAS  CONFIG",
      "echo  local-gateway  http://echo.localhost:45531  0         v1 applied",
      "",
      "Traffic (last 60s): not reported yet by every running gateway replica",
    ]);
  });

  it("prints the server's message for an unknown service", async () => {
    const { code, stdout, stderr } = await gateplane(["service", "get", "nope"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Service nope does not exist\n");
    expect(stdout).toBe("");
  });

  it("needs a NAME", async () => {
    const { code, stderr } = await gateplane(["service", "get"]);
    expect(code).toBe(2);
    expect(stderr).toBe("gateplane service get: NAME is required\n");
  });
});

describe("service delete", () => {
  it("shows the service, asks, and deletes it", async () => {
    const { code, stdout } = await gateplane(["service", "delete", "echo"], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^NAME[^\n]+\necho +local-gateway [^\n]+\nDelete the service echo\? \[y\/n\]: \nService echo deleted\n$/,
    );
    expect(fake.calls()).toEqual([
      "GET /api/v1/projects/main/services/echo",
      "DELETE /api/v1/projects/main/services/echo",
    ]);
    expect(fake.services.has("echo")).toBe(false);
  });

  it("keeps it on no, and does not ask with -y", async () => {
    const declined = await gateplane(["service", "delete", "echo"], { stdin: "n\n" });
    expect(declined.code).toBe(0);
    expect(declined.stdout).toMatch(/\[y\/n\]: \n\nExiting\.\.\.\n$/);
    expect(fake.services.has("echo")).toBe(true);

    const forced = await gateplane(["service", "delete", "llama", "-y"]);
    expect(forced.stdout).not.toContain("[y/n]");
    expect(forced.stdout).toMatch(/\nService llama deleted\n$/);
    expect(fake.services.has("llama")).toBe(false);
  });

  it("fails for an unknown service without asking", async () => {
    const { code, stdout, stderr } = await gateplane(["service", "delete", "nope"], { stdin: "y\n" });
    expect(code).toBe(1);
    expect(stderr).toBe("Service nope does not exist\n");
    expect(stdout).toBe("");
  });
});

describe("service replica add", () => {
  const add = (...rest: string[]) => gateplane(["service", "replica", "add", ...rest]);

  it("registers a new replica, then updates it", async () => {
    const added = await add("echo", "--id", "r1", "--url", "http://127.0.0.1:9001");
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    expect(added.stdout).toBe("Replica r1 added to echo\n");
    expect(fake.requests.at(-1)).toEqual({
      method: "PUT",
      path: "/api/v1/projects/main/services/echo/replicas/r1",
      body: { url: "http://127.0.0.1:9001" },
    });

    const moved = await add("echo", "--id", "r1", "--url", "http://127.0.0.1:9011/prefix");
    expect(moved.code).toBe(0);
    expect(moved.stdout).toBe("Replica r1 updated in echo\n");
    const same = await add("echo", "--id", "r1", "--url", "http://127.0.0.1:9011/prefix");
    expect(same.stdout).toBe("Replica r1 updated in echo\n");
    expect(fake.services.get("echo")?.replicas.map((r) => [r.id, r.url])).toEqual([
      ["r1", "http://127.0.0.1:9011/prefix"],
    ]);
  });

  it("registers prefill and decode replicas with --role and --bootstrap-port", async () => {
    const prefill = await add(
      "echo",
      "--id",
      "p1",
      "--url",
      "http://10.0.0.5:30001",
      "--role",
      "prefill",
      "--bootstrap-port",
      "8998",
    );
    expect(prefill.stderr).toBe("");
    expect(fake.requests.at(-1)?.body).toEqual({ url: "http://10.0.0.5:30001", role: "prefill", bootstrap_port: 8998 });
    const decode = await add("echo", "--id", "d1", "--url", "http://10.0.0.6:30002", "--role", "decode");
    expect(decode.code).toBe(0);
    expect(fake.services.get("echo")?.replicas.map((r) => [r.id, r.role, r.bootstrap_port])).toEqual([
      ["p1", "prefill", 8998],
      ["d1", "decode", null],
    ]);
    const { stdout } = await gateplane(["service", "replica", "list", "echo"]);
    expect(stdout).toMatch(/^ID +URL +ROLE +REGISTERED\n/);
    expect(stdout).toMatch(/\np1 +http:\/\/10\.0\.0\.5:30001 +prefill \(bootstrap 8998\) +/);
  });

  it.each([
    [["--role", "router"], '--role: expected one of prefill, decode, got "router"'],
    [
      ["--role", "decode", "--bootstrap-port", "8998"],
      "--bootstrap-port: applies to prefill replicas only (role: prefill)",
    ],
    [["--role", "prefill", "--bootstrap-port", "70000"], "--bootstrap-port: must be a port from 1 to 65535"],
    [["--role", "prefill", "--bootstrap-port", "x"], '--bootstrap-port: expected a port number, got "x"'],
  ])("refuses a bad role or bootstrap port: %j", async (options, problem) => {
    const { code, stderr } = await add("echo", "--id", "p1", "--url", "http://10.0.0.5:30001", ...options);
    expect(stderr).toBe(`gateplane service replica add: ${problem}\n`);
    expect(code).toBe(2);
    expect(fake.requests).toEqual([]);
  });

  it("escapes the id in the path", async () => {
    const { code } = await add("echo", "--id", "node:7.a_b", "--url", "https://10.0.0.9:8443");
    expect(code).toBe(0);
    expect(fake.requests.at(-1)?.path).toBe("/api/v1/projects/main/services/echo/replicas/node%3A7.a_b");
    expect(fake.services.get("echo")?.replicas[0]?.id).toBe("node:7.a_b");
  });

  it.each([
    [
      "a URL that is not one",
      ["--id", "r1", "--url", "127.0.0.1:9001"],
      ["--url: expected a URL such as http://10.0.0.5:8000"],
    ],
    [
      "a scheme other than http(s)",
      ["--id", "r1", "--url", "ftp://10.0.0.5"],
      ["--url: expected http(s)://host:port with an optional path prefix, and no query, fragment or credentials"],
    ],
    [
      "a URL with a query",
      ["--id", "r1", "--url", "http://10.0.0.5:8000/?x=1"],
      ["--url: expected http(s)://host:port with an optional path prefix, and no query, fragment or credentials"],
    ],
    [
      "a bad id and a bad URL",
      ["--id", "r 1", "--url", "http://user:pw@10.0.0.5:8000"],
      [
        "--id: expected 1–128 of letters, digits, '.', '_', ':' or '-'",
        "--url: expected http(s)://host:port with an optional path prefix, and no query, fragment or credentials",
      ],
    ],
  ])("refuses %s before contacting anyone, one line per option", async (_, options, problems) => {
    // No settings at all: the endpoint is checked first.
    const io = testIo();
    const { code, stdout, stderr } = await gateplane(["service", "replica", "add", "echo", ...options], { io });
    expect(code).toBe(2);
    expect(stderr).toBe(problems.map((p) => `gateplane service replica add: ${p}\n`).join(""));
    expect(stdout).toBe("");
    expect(fake.requests).toEqual([]);
  });

  it.each([
    [["echo", "--url", "http://127.0.0.1:9001"], "--id ID is required"],
    [["echo", "--id", "r1"], "--url URL is required"],
    [["--id", "r1", "--url", "http://127.0.0.1:9001"], "NAME is required"],
    [["echo", "r1", "--url", "http://127.0.0.1:9001"], "unexpected argument 'r1'"],
  ])("needs NAME, --id and --url: %j", async (rest, problem) => {
    const { code, stderr } = await add(...rest);
    expect(code).toBe(2);
    expect(stderr).toBe(`gateplane service replica add: ${problem}\n`);
    expect(fake.requests).toEqual([]);
  });

  it("prints the server's message for an unknown service", async () => {
    const { code, stderr } = await add("nope", "--id", "r1", "--url", "http://127.0.0.1:9001");
    expect(code).toBe(1);
    expect(stderr).toBe("Service nope does not exist\n");
  });

  it("takes --url as the replica's and --api-url as the control plane's, before or after", async () => {
    const io = testIo({ env: { GATEPLANE_TOKEN: fake.token, GATEPLANE_PROJECT: "main" } });
    const argv = [
      "--api-url",
      fake.url,
      "service",
      "replica",
      "add",
      "echo",
      "--id",
      "r1",
      "--url",
      "http://127.0.0.1:9001",
    ];
    const { code, stdout, stderr } = await gateplane(argv, { io });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe("Replica r1 added to echo\n");
    expect(fake.services.get("echo")?.replicas[0]?.url).toBe("http://127.0.0.1:9001");
    const after = ["service", "replica", "add", "echo", "--id", "r1", "--url", "http://127.0.0.1:9002"];
    const io2 = testIo({ env: { GATEPLANE_TOKEN: fake.token, GATEPLANE_PROJECT: "main" } });
    const moved = await gateplane([...after, "--api-url", fake.url], { io: io2 });
    expect(moved.stdout).toBe("Replica r1 updated in echo\n");
  });
});

describe("service replica remove", () => {
  it("removes a replica", async () => {
    const { code, stdout, stderr } = await gateplane(["service", "replica", "remove", "llama", "r1"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe("Replica r1 removed from llama\n");
    expect(fake.calls()).toEqual(["DELETE /api/v1/projects/main/services/llama/replicas/r1"]);
    expect(fake.services.get("llama")?.replicas.map((r) => r.id)).toEqual(["r2"]);
  });

  it("prints the server's message for an unknown replica or service", async () => {
    const replica = await gateplane(["service", "replica", "remove", "llama", "r9"]);
    expect(replica.code).toBe(1);
    expect(replica.stderr).toBe("Replica r9 of service llama does not exist\n");
    expect(replica.stdout).toBe("");
    const service = await gateplane(["service", "replica", "remove", "nope", "r1"]);
    expect(service.stderr).toBe("Service nope does not exist\n");
  });

  it.each([
    [["llama"], "ID is required"],
    [[], "NAME and ID are required"],
    [["llama", "r1", "r2"], "unexpected argument 'r2'"],
  ])("needs NAME and ID: %j", async (rest, problem) => {
    const { code, stderr } = await gateplane(["service", "replica", "remove", ...rest]);
    expect(code).toBe(2);
    expect(stderr).toBe(`gateplane service replica remove: ${problem}\n`);
  });
});

describe("service replica list", () => {
  it("prints ID URL REGISTERED", async () => {
    const { code, stdout } = await gateplane(["service", "replica", "list", "llama"]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("ID  URL                   REGISTERED");
    expect(lines.slice(1).map((l) => l.replace(/\d+ sec ago$/, "<age>"))).toEqual([
      "r1  http://10.0.0.5:8000  <age>",
      "r2  http://10.0.0.6:8000  <age>",
    ]);
  });

  it("prints {service, replicas} with --json", async () => {
    const { stdout } = await gateplane(["service", "replica", "list", "llama", "--json"]);
    const body = JSON.parse(stdout) as { service: string; replicas: { id: string; url: string }[] };
    expect(body.service).toBe("llama");
    expect(body.replicas.map((r) => r.id)).toEqual(["r1", "r2"]);
  });

  it("prints the header alone for a service without replicas", async () => {
    const { stdout } = await gateplane(["service", "replica", "list", "echo"]);
    expect(stdout).toBe("ID  URL  REGISTERED\n");
  });
});

describe("service: grammar and help", () => {
  it.each([
    [["service", "frob"], "gateplane service: unknown command 'frob'; expected list, get, delete or replica"],
    [["service", "replica"], "gateplane service replica: expected add, remove or list"],
    [["service", "replica", "frob"], "gateplane service replica: unknown command 'frob'; expected add, remove or list"],
    [["service", "list", "extra"], "gateplane service list: unexpected argument 'extra'"],
    [
      ["service", "delete", "echo", "--force"],
      "gateplane service delete: unknown option '--force' (see gateplane service delete --help)",
    ],
    [["service", "get", "main/echo"], "gateplane service get: 'main/echo': give the project with -p, not in the name"],
  ])("%j is a usage error", async (argv, message) => {
    const { code, stderr } = await gateplane(argv);
    expect(code).toBe(2);
    expect(stderr).toBe(`${message}\n`);
    expect(fake.requests).toEqual([]);
  });

  it("prints the service help for every subcommand's --help, without settings", async () => {
    for (const argv of [
      ["service", "--help"],
      ["service", "list", "-h"],
      ["service", "replica", "--help"],
      ["service", "replica", "add", "--help"],
      ["--help", "service"],
    ]) {
      const { code, stdout } = await gateplane(argv, { io: testIo() });
      expect(code).toBe(0);
      expect(stdout).toBe(`${HELP.service}\n`);
    }
    expect(HELP.service).toContain("gateplane service replica add NAME --id ID --url URL");
  });

  it("lists the service commands in the main help and service files in apply's and delete's", async () => {
    const main = await gateplane(["--help"], { io: testIo() });
    expect(main.stdout).toMatch(/\n {2}service \[list\] +List services\n/);
    expect(main.stdout).toContain("  service replica add|remove|list NAME\n");
    const applyHelp = await gateplane(["apply", "--help"], { io: testIo() });
    expect(applyHelp.stdout).toContain("type: service");
    const deleteHelp = await gateplane(["delete", "--help"], { io: testIo() });
    expect(deleteHelp.stdout).toContain("gateway or service");
  });
});
