import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane, NO_DEFAULT_GATEWAY } from "../test/fakes/control-plane/api.ts";
import { runCli, type TestIo, testIo } from "../test/support/cli-io.ts";

const example = (name: string) => readFileSync(new URL(`../examples/${name}`, import.meta.url), "utf8");
const ECHO = "type: service\nname: echo\ngateway: local-gateway\nhttps: false\n";
const HINT = "No replicas registered yet: gateplane service replica add echo --id <id> --url <url>";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

/** The local gateway of examples/local-gateway.dstack.yml, running: plain HTTP on 127.0.0.1:45531. */
const seedLocalGateway = () => fake.seed({ name: "local-gateway", backend: "local", domain: "localhost" });
/** A default gateway with a certificate, as examples/service.dstack.yml expects. */
const seedDefaultGateway = () => fake.seed({ name: "edge", domain: "example.com" }, { default: true });

async function apply(args: string[], options: { file?: string; stdin?: string; io?: TestIo } = {}) {
  const io = options.io ?? testIo({ env: fake.env, stdin: options.stdin });
  writeFileSync(join(io.cwd, "service.dstack.yml"), options.file ?? ECHO);
  return runCli(["apply", "-f", "service.dstack.yml", ...args], io);
}

const applyBodies = () =>
  fake.requests
    .filter((r) => r.path.endsWith("/services/apply"))
    .map(
      (r) =>
        r.body as {
          plan: { spec: { configuration: Record<string, unknown> }; current_resource: { id: string } | null };
          force: boolean;
        },
    );

describe("apply -f service: create", () => {
  it("shows the plan, creates, and prints where the service is served and how to add replicas", async () => {
    seedLocalGateway();
    const { code, stdout, stderr, io } = await apply(["-y"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n")).toEqual([
      "Project        main",
      "User           alice",
      "Configuration  service.dstack.yml",
      "Type           service",
      "Gateway        local-gateway",
      "Replicas       1",
      "",
      "Service echo does not exist yet.",
      "NAME  GATEWAY        URL                          REPLICAS  CONFIG",
      "echo  local-gateway  http://echo.localhost:45531  0         v1 applied",
      "",
      "Service is available at http://echo.localhost:45531",
      HINT,
    ]);
    expect(fake.calls()).toEqual([
      "POST /api/v1/projects/main/services/plan",
      "POST /api/v1/projects/main/services/apply",
    ]);
    expect(applyBodies()).toEqual([
      {
        plan: {
          spec: {
            configuration: { type: "service", name: "echo", gateway: "local-gateway", https: false },
            configuration_path: "service.dstack.yml",
          },
          current_resource: null,
        },
        force: false,
      },
    ]);
    // Nothing to provision, so nothing to wait for.
    expect(io.sleeps).toEqual([]);
  });

  it("asks before creating; no creates nothing", async () => {
    seedLocalGateway();
    const declined = await apply([], { stdin: "n\n" });
    expect(declined.code).toBe(0);
    expect(declined.stdout).toMatch(
      /Service echo does not exist yet\.\nCreate the service\? \[y\/n\]: \n\nExiting\.\.\.\n$/,
    );
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/services/plan"]);

    const accepted = await apply([], { stdin: "y\n" });
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toContain("Create the service? [y/n]: \nNAME");
    expect(fake.services.get("echo")?.gateway).toBe("local-gateway");
  });

  it("ships examples/service.dstack.yml: a model service on the default gateway", async () => {
    seedDefaultGateway();
    const { code, stdout, stderr } = await apply(["-y"], { file: example("service.dstack.yml") });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines.slice(3, 7)).toEqual([
      "Type           service",
      "Gateway        default",
      "Replicas       1..4",
      "Model          meta-llama/Llama-3.1-8B-Instruct",
    ]);
    expect(lines.slice(-3)).toEqual([
      "Service is available at https://llama.example.com",
      "Model endpoint: https://gateway.example.com/v1",
      "No replicas registered yet: gateplane service replica add llama --id <id> --url <url>",
    ]);
    const created = fake.services.get("llama")!;
    expect(created.gateway).toBe("edge");
    expect(created.configuration).toMatchObject({
      replicas: { min: 1, max: 4 },
      scaling: { metric: "rps", target: 10 },
      rate_limits: [{ prefix: "/v1/chat/completions" }, { prefix: "/" }],
    });
  });

  it("ships examples/local-service.dstack.yml: echo on the local gateway over plain HTTP", async () => {
    seedLocalGateway();
    const { code, stdout } = await apply(["-y"], { file: example("local-service.dstack.yml") });
    expect(code).toBe(0);
    expect(stdout).toContain("\nService is available at http://echo.localhost:45531\n");
    expect(example("local-service.dstack.yml")).toContain(
      "gateplane service replica add echo --id r1 --url http://127.0.0.1:9001",
    );
  });

  it("adds MODEL and CREATED with -v, and shows a configuration the gateway has yet to take", async () => {
    seedDefaultGateway();
    fake.agentState = "pending";
    const { stdout } = await apply(["-y", "-v"], { file: example("service.dstack.yml") });
    expect(stdout).toMatch(
      /\nNAME +GATEWAY +URL +REPLICAS +CONFIG +MODEL +CREATED\nllama +edge +https:\/\/llama\.example\.com +0 +v1 pending \(0\/1\) +meta-llama\/Llama-3\.1-8B-Instruct +\d+ sec ago\n/,
    );
  });

  it("lets -n override the file's name", async () => {
    seedLocalGateway();
    const { code, stdout } = await apply(["-y", "-n", "echo-two"]);
    expect(code).toBe(0);
    expect(stdout).toContain("Service echo-two does not exist yet.");
    expect([...fake.services.keys()]).toEqual(["echo-two"]);
    expect(applyBodies()[0]?.plan.spec.configuration.name).toBe("echo-two");
  });

  it("asks GET /me for the user when the plan does not name one", async () => {
    seedLocalGateway();
    fake.planOmitsUser = true;
    fake.user = "bob";
    const { stdout } = await apply(["-y"]);
    expect(stdout).toContain("\nUser           bob\n");
    expect(fake.calls().slice(0, 2)).toEqual(["POST /api/v1/projects/main/services/plan", "GET /api/v1/me"]);
  });
});

describe("apply -f service: existing service", () => {
  it("updates in place after confirmation, keeping the registered replicas", async () => {
    seedLocalGateway();
    const seeded = fake.seedService({ name: "echo", gateway: "local-gateway", https: false, read_timeout: "1m" }, [
      { id: "r1", url: "http://127.0.0.1:9001" },
    ]);
    const { code, stdout } = await apply([], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toContain(
      "Found service echo. Detected changes that can be updated in-place:\n- read_timeout\n\nUpdate the service? [y/n]: \n",
    );
    expect(stdout).toMatch(/\necho +local-gateway +http:\/\/echo\.localhost:45531 +1 +v3 applied\n/);
    expect(stdout).not.toContain("No replicas registered yet");
    expect(applyBodies()[0]?.plan.current_resource).toMatchObject({ id: seeded.id });
    expect(fake.services.get("echo")?.configuration.read_timeout).toBe(300);
    expect(fake.services.get("echo")?.replicas.map((r) => r.id)).toEqual(["r1"]);
  });

  it("keeps the service on no", async () => {
    seedLocalGateway();
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false, auth: false });
    const { code, stdout } = await apply([], { stdin: "n\n" });
    expect(code).toBe(0);
    expect(stdout).toMatch(/- auth\n\nUpdate the service\? \[y\/n\]: \n\nExiting\.\.\.\n$/);
    expect(fake.services.get("echo")?.configuration.auth).toBe(false);
  });

  it("re-creates a service that moves to another gateway: delete, then create", async () => {
    seedLocalGateway();
    seedDefaultGateway();
    const old = fake.seedService({ name: "echo", gateway: "local-gateway", https: false }, [
      { id: "r1", url: "http://127.0.0.1:9001" },
      { id: "r2", url: "http://127.0.0.1:9002" },
    ]);
    // No gateway: the project default (edge) from now on.
    const { code, stdout, stderr } = await apply([], { file: "type: service\nname: echo\n", stdin: "y\n" });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(
      [
        "Found service echo. Detected changes that cannot be updated in-place:",
        "- gateway",
        "- https",
        "",
        "Re-creating the service removes its registered replicas (r1, r2); register them again.",
        "Re-create the service? [y/n]: ",
      ].join("\n"),
    );
    expect(fake.calls()).toEqual([
      "POST /api/v1/projects/main/services/plan",
      "DELETE /api/v1/projects/main/services/echo",
      "POST /api/v1/projects/main/services/apply",
    ]);
    expect(applyBodies()[0]?.plan.current_resource).toBeNull();
    const recreated = fake.services.get("echo")!;
    expect(recreated.id).not.toBe(old.id);
    expect(recreated.gateway).toBe("edge");
    expect(stdout).toMatch(/\nService is available at https:\/\/echo\.example\.com\nNo replicas registered yet/);
  });

  it("does not re-create on no", async () => {
    seedLocalGateway();
    seedDefaultGateway();
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false });
    const { code, stdout } = await apply([], { file: "type: service\nname: echo\n", stdin: "n\n" });
    expect(code).toBe(0);
    expect(stdout).toMatch(/Re-create the service\? \[y\/n\]: \n\nExiting\.\.\.\n$/);
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/services/plan"]);
    expect(fake.services.get("echo")?.gateway).toBe("local-gateway");
  });

  it("re-creates with -y without asking", async () => {
    seedLocalGateway();
    fake.seed({ name: "other", backend: "local", domain: "other.localhost" });
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false });
    const file = "type: service\nname: echo\ngateway: other\nhttps: false\n";
    const { code, stdout } = await apply(["-y"], { file });
    expect(code).toBe(0);
    expect(stdout).not.toContain("[y/n]");
    expect(stdout).not.toContain("removes its registered replicas");
    expect(fake.services.get("echo")?.url).toBe("http://echo.other.localhost:45531");
  });

  it("with no changes, says so and changes nothing", async () => {
    seedLocalGateway();
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false });
    for (const args of [["-y"], []]) {
      const { code, stdout } = await apply(args);
      expect(code).toBe(0);
      expect(stdout).toMatch(
        /\nFound service echo\. No configuration changes detected\. Use --force to apply anyway\.\n$/,
      );
    }
    expect(fake.calls()).toEqual([
      "POST /api/v1/projects/main/services/plan",
      "POST /api/v1/projects/main/services/plan",
    ]);
  });

  it("with no changes and --force, re-applies in place (never re-creates)", async () => {
    seedLocalGateway();
    const seeded = fake.seedService({ name: "echo", gateway: "local-gateway", https: false }, [
      { id: "r1", url: "http://127.0.0.1:9001" },
    ]);
    const { code, stdout } = await apply(["--force"], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toContain("Found service echo. No configuration changes detected.\nUpdate the service? [y/n]: ");
    expect(fake.calls()).not.toContain("DELETE /api/v1/projects/main/services/echo");
    expect(applyBodies()).toEqual([expect.objectContaining({ force: true })]);
    expect(applyBodies()[0]?.plan.current_resource?.id).toBe(seeded.id);
    expect(fake.services.get("echo")?.replicas).toHaveLength(1);
  });

  it("reports a service changed between plan and apply; --force overrides", async () => {
    seedLocalGateway();
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false, auth: false });
    fake.onRequest = (_method, path) => {
      if (path.endsWith("/services/apply")) fake.services.get("echo")!.configuration.read_timeout += 1;
    };
    const conflicted = await apply(["-y"]);
    expect(conflicted.code).toBe(1);
    expect(conflicted.stderr).toBe("Failed to apply plan. Resource has been changed. Try again or use force apply.\n");
    expect(fake.services.get("echo")?.configuration.auth).toBe(false);

    const forced = await apply(["-y", "--force"]);
    expect(forced.stderr).toBe("");
    expect(forced.code).toBe(0);
    expect(fake.services.get("echo")?.configuration.auth).toBe(true);
  });

  it("reports a refused in-place update with the server's message", async () => {
    seedDefaultGateway();
    fake.seed({ name: "backup", domain: "backup.example.com" });
    fake.seedService({ name: "echo" });
    // The project's default gateway changes between the plan and the apply.
    fake.onRequest = (_method, path) => {
      if (!path.endsWith("/services/apply")) return;
      fake.gateways.get("edge")!.default = false;
      fake.gateways.get("backup")!.default = true;
    };
    const { code, stderr } = await apply(["-y"], { file: "type: service\nname: echo\nauth: false\n" });
    expect(code).toBe(1);
    expect(stderr).toBe("Service echo is served by gateway edge; delete it and re-apply to move it to backup\n");
  });
});

describe("apply -f service: errors", () => {
  it("validates the file before contacting anyone, at file:line:col", async () => {
    const io = testIo();
    const file = "type: service\nname: echo\nreplicas: 2..1\nmodel:\n  name: llama\nhttps: maybe\n";
    const { code, stdout, stderr } = await apply(["-y"], { file, io });
    expect(code).toBe(1);
    expect(stderr).toBe(
      [
        'service.dstack.yml:3:11: replicas: expected a count or a range min..max with 0 ≤ min ≤ max ≤ 1000, got "2..1"',
        'service.dstack.yml:6:8: https: expected one of true, false, auto, got "maybe"',
        "",
      ].join("\n"),
    );
    expect(stdout).toBe("");
    expect(fake.requests).toEqual([]);
  });

  it("refuses a file whose type is neither gateway nor service", async () => {
    const { code, stderr } = await apply(["-y"], { file: "# a task\ntype: task\nname: echo\n" });
    expect(code).toBe(1);
    expect(stderr).toBe("service.dstack.yml:2:7: type: expected one of gateway, service\n");
    expect(fake.requests).toEqual([]);
  });

  it("refuses a file without a type at the document's first line", async () => {
    const { code, stderr } = await apply(["-y"], { file: "name: echo\nhttps: false\n" });
    expect(code).toBe(1);
    expect(stderr).toBe("service.dstack.yml:1:1: type: expected one of gateway, service\n");
  });

  it("prints the server's message when there is no default gateway", async () => {
    const { code, stderr } = await apply(["-y"], { file: "type: service\nname: echo\n" });
    expect(code).toBe(1);
    expect(stderr).toBe(`${NO_DEFAULT_GATEWAY}\n`);
    expect(fake.services.size).toBe(0);
  });

  it("prints the server's message for a gateway that does not exist", async () => {
    const { code, stderr } = await apply(["-y"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Gateway local-gateway does not exist in project main\n");
  });

  it("puts a field the control plane refuses at its place in the file", async () => {
    seedLocalGateway();
    const file = "type: service\nname: echo\nhttps: true\ngateway: local-gateway\n";
    const { code, stdout, stderr } = await apply(["-y"], { file });
    expect(code).toBe(1);
    expect(stderr).toBe(
      "service.dstack.yml:3:8: https: Cannot run HTTPS service on gateway with no SSL certificates configured (gateway local-gateway has certificate: null); set https: false or auto\n",
    );
    expect(stdout).not.toContain("Service is available");
  });

  it("puts a field the server refuses at its place in the file", async () => {
    seedLocalGateway();
    const file = "# echo on the local gateway\ntype: service\nname: echo\ngateway: local-gateway\nhttps: true\n";
    const { stderr } = await apply(["-y"], { file });
    expect(stderr).toBe(
      "service.dstack.yml:5:8: https: Cannot run HTTPS service on gateway with no SSL certificates configured (gateway local-gateway has certificate: null); set https: false or auto\n",
    );
  });
});
