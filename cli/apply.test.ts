import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, type TestIo, testIo } from "../test/support/cli-io.ts";
import { run } from "./run.ts";

const EDGE = "type: gateway\nname: edge\nbackend: aws\nregion: eu-west-1\ndomain: example.com\n";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  io: TestIo;
}

async function apply(
  args: string[],
  options: { file?: string; stdin?: string; tty?: boolean; before?: (io: TestIo) => void } = {},
): Promise<Result> {
  const io = testIo({ env: fake.env, stdin: options.stdin, tty: options.tty });
  writeFileSync(join(io.cwd, "gateway.dstack.yml"), options.file ?? EDGE);
  options.before?.(io);
  return runCli(["apply", "-f", "gateway.dstack.yml", ...args], io);
}

const applyBodies = () =>
  fake.requests
    .filter((r) => r.path.endsWith("/gateways/apply"))
    .map((r) => r.body as { plan: { spec: { configuration: Record<string, unknown> }; current_resource: unknown } });

describe("apply: create", () => {
  it("plans, shows the plan, creates and follows provisioning until running", async () => {
    const { code, stdout, stderr, io } = await apply(["-y"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines.slice(0, 8)).toEqual([
      "Project        main",
      "User           alice",
      "Configuration  gateway.dstack.yml",
      "Type           gateway",
      "Backend        aws",
      "Region         eu-west-1",
      "Domain         example.com",
      "Replicas       1",
    ]);
    expect(stdout).toContain("\nGateway edge does not exist yet.\n");
    expect(stdout).not.toContain("[y/n]");
    expect(stdout).toContain("Provisioning edge...\n");
    expect(stdout).toMatch(
      /BACKEND +REGION +NAME +HOSTNAME +DOMAIN +DEFAULT +STATUS +CREATED\naws +eu-west-1 +edge +10\.0\.0\.1 +example\.com +✓ +running +\d+ sec ago\n\n/,
    );
    // Then which DNS record makes <service>.example.com reach it.
    expect(stdout).toMatch(
      /\nTo reach services on this gateway, create this DNS record:\n {2}\*\.example\.com {2}A {6}10\.0\.0\.1\n$/,
    );
    expect(fake.calls()).toEqual([
      "POST /api/v1/projects/main/gateways/plan",
      "POST /api/v1/projects/main/gateways/apply",
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/gateways/edge",
    ]);
    // submitted → provisioning → running: a look after 250 ms, then 500 ms (doubling to every 2 s).
    expect(io.sleeps).toEqual([250, 500]);
    expect(applyBodies()[0]).toEqual({
      plan: {
        spec: {
          configuration: { type: "gateway", name: "edge", backend: "aws", region: "eu-west-1", domain: "example.com" },
          configuration_path: "gateway.dstack.yml",
        },
        current_resource: null,
      },
      force: false,
    });
    expect(fake.requests.every((r) => r.method !== "GET" || !r.path.endsWith("/me"))).toBe(true);
  });

  it("asks GET /me for the user when the plan does not name one", async () => {
    fake.planOmitsUser = true;
    fake.user = "bob";
    const { code, stdout } = await apply(["-y", "-d"]);
    expect(code).toBe(0);
    expect(stdout).toContain("\nUser           bob\n");
    expect(fake.calls().slice(0, 2)).toEqual(["POST /api/v1/projects/main/gateways/plan", "GET /api/v1/me"]);
  });

  it("asks before creating and reads the answer from stdin", async () => {
    const { code, stdout } = await apply([], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toContain("Gateway edge does not exist yet.\nCreate the gateway? [y/n]: \n");
    expect(fake.gateways.get("edge")?.status).toBe("running");
  });

  it("asks again after an answer that is neither yes nor no", async () => {
    const { code, stdout } = await apply([], { stdin: "maybe\nyes\n" });
    expect(code).toBe(0);
    expect(stdout).toContain("Create the gateway? [y/n]: \nPlease enter y or n\nCreate the gateway? [y/n]: \n");
  });

  it("creates nothing when the answer is no", async () => {
    const { code, stdout } = await apply([], { stdin: "n\n" });
    expect(code).toBe(0);
    expect(stdout).toMatch(/Create the gateway\? \[y\/n\]: \n\nExiting\.\.\.\n$/);
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/gateways/plan"]);
  });

  it("fails instead of guessing when stdin ends without an answer", async () => {
    const { code, stderr } = await apply([]);
    expect(code).toBe(1);
    expect(stderr).toBe('no answer to "Create the gateway?" on stdin; pass -y to proceed without confirmation\n');
    expect(fake.gateways.size).toBe(0);
  });

  it("does not wait with --detach", async () => {
    const { code, stdout, io } = await apply(["-y", "-d"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Gateway configuration submitted\. Exiting\.\.\.\n$/);
    expect(io.sleeps).toEqual([]);
    expect(fake.gateways.get("edge")?.status).toBe("submitted");
  });

  it("creates the name the plan generated when the file has none", async () => {
    const { code, stdout } = await apply(["-y", "-d"], { file: "type: gateway\nbackend: local\n" });
    expect(code).toBe(0);
    expect(stdout).toContain("Gateway gateway-1 does not exist yet.");
    expect(stdout).toContain("Domain         -\n");
    expect(applyBodies()[0]?.plan.spec.configuration.name).toBe("gateway-1");
    expect([...fake.gateways.keys()]).toEqual(["gateway-1"]);
  });

  it("lets -n override the file's name", async () => {
    const { code } = await apply(["-y", "-d", "-n", "renamed"]);
    expect(code).toBe(0);
    expect([...fake.gateways.keys()]).toEqual(["renamed"]);
  });

  it("reports a failed provisioning with its error and exits 1", async () => {
    fake.failProvisioning = "InsufficientInstanceCapacity";
    const { code, stdout, stderr } = await apply(["-y"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Provisioning failed. Error: Failed to provision gateway replica\n");
    expect(stdout).toMatch(/STATUS +CREATED +ERROR\n/);
    expect(stdout).toContain("Failed to provision gateway replica. InsufficientInstanceCapacity");
  });
});

describe("apply: existing gateway", () => {
  it("updates in place after confirmation, without waiting", async () => {
    const seeded = fake.seed({ name: "edge", domain: "old.example.com" });
    const { code, stdout, io } = await apply([], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toContain(
      "Found gateway edge. Detected changes that can be updated in-place:\n- domain\n\nUpdate the gateway? [y/n]: \n",
    );
    expect(stdout).toMatch(
      /aws +eu-west-1 +edge +10\.0\.0\.1 +example\.com +running\n\nTo reach services on this gateway, create this DNS record:\n {2}\*\.example\.com {2}A {6}10\.0\.0\.1\n$/,
    );
    expect(fake.gateways.get("edge")?.wildcard_domain).toBe("example.com");
    expect(applyBodies()[0]?.plan.current_resource).toMatchObject({ id: seeded.id });
    expect(io.sleeps).toEqual([]);
  });

  it("re-creates after confirmation when a change cannot be made in place", async () => {
    fake.seed({ name: "edge", region: "us-east-1", domain: "example.com" });
    const oldId = fake.gateways.get("edge")!.id;
    const { code, stdout, io } = await apply([], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toContain(
      "Found gateway edge. Detected changes that cannot be updated in-place:\n- region\n\nRe-create the gateway? [y/n]: \n",
    );
    // One request re-creates it on the server; then the old one is followed until the new one runs.
    expect(fake.calls()).toEqual([
      "POST /api/v1/projects/main/gateways/plan",
      "GET /api/v1/projects/main/services",
      "POST /api/v1/projects/main/gateways/apply",
      // The old gateway still there twice (hosts being torn down), then the new one:
      // submitted → provisioning → running.
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/gateways/edge",
    ]);
    expect(io.sleeps).toEqual([250, 500, 1000, 2000, 2000]);
    expect(fake.requests.at(2)?.body).toMatchObject({
      plan: { current_resource: { id: oldId } },
      force: false,
      recreate: true,
      cascade: false,
    });
    const recreated = fake.gateways.get("edge")!;
    expect(recreated.id).not.toBe(oldId);
    expect(recreated.status).toBe("running");
    expect(recreated.configuration.region).toBe("eu-west-1");
    expect(stdout).toMatch(/eu-west-1 +edge +10\.0\.0\.1 +example\.com +running/);
  });

  it("lists the services a re-create deletes, and asks the server to cascade only after yes", async () => {
    fake.seed({ name: "edge", region: "us-east-1", domain: "example.com", certificate: null }, { default: true });
    fake.seedService({ name: "echo", gateway: "edge", https: false }, [{ id: "r1", url: "http://10.1.0.1:80" }]);
    const declined = await apply([], { stdin: "n\n" });
    expect(declined.code).toBe(0);
    expect(declined.stdout).toContain(
      "Re-creating gateway edge also deletes its 1 service and their 1 replica registration:\n- echo (1 replica)\n\nRe-create the gateway? [y/n]: ",
    );
    expect(fake.calls()).not.toContain("POST /api/v1/projects/main/gateways/apply");
    expect(fake.services.has("echo")).toBe(true);

    const { code } = await apply(["-y", "-d"]);
    expect(code).toBe(0);
    expect(applyBodies().at(-1)).toMatchObject({ recreate: true, cascade: true });
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("a re-create the server refuses changes nothing and says why", async () => {
    fake.seed({ name: "edge", region: "us-east-1", domain: "example.com" });
    const oldId = fake.gateways.get("edge")!.id;
    // The gateway changes between the plan and the re-create.
    fake.onRequest = (method, path) => {
      if (method === "POST" && path.endsWith("/apply")) fake.gateways.get("edge")!.configuration.replicas += 1;
    };
    const { code, stderr } = await apply(["-y"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Failed to apply plan. Resource has been changed. Try again or use force apply.\n");
    expect(fake.gateways.get("edge")).toMatchObject({ id: oldId, to_be_deleted: false, status: "running" });
  });

  it("with -y and no changes, says so and does nothing unless --force", async () => {
    fake.seed({ name: "edge", domain: "example.com" });
    const { code, stdout } = await apply(["-y"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/\nNo configuration changes detected\. Use --force to apply anyway\.\n$/);
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/gateways/plan"]);
  });

  it("without -y and no changes, offers to re-create", async () => {
    fake.seed({ name: "edge", domain: "example.com" });
    const { code, stdout } = await apply([], { stdin: "n\n" });
    expect(code).toBe(0);
    expect(stdout).toContain("Found gateway edge. No configuration changes detected.\nRe-create the gateway? [y/n]: ");
    expect(stdout).toMatch(/Exiting\.\.\.\n$/);
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/gateways/plan", "GET /api/v1/projects/main/services"]);
  });

  it("re-creates an unchanged gateway with -y --force", async () => {
    fake.seed({ name: "edge", domain: "example.com" });
    const { code } = await apply(["-y", "--force", "-d"]);
    expect(code).toBe(0);
    expect(fake.calls()).not.toContain("DELETE /api/v1/projects/main/gateways/edge");
    expect(fake.requests.at(-1)!.body).toMatchObject({ force: true, recreate: true });
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("reports a gateway changed between plan and apply, and --force overrides", async () => {
    fake.seed({ name: "edge", domain: "old.example.com" });
    // Someone else scales the gateway between our plan and our apply, every time.
    fake.onRequest = (_method, path) => {
      if (path.endsWith("/apply")) fake.gateways.get("edge")!.configuration.replicas += 1;
    };
    const conflicted = await apply(["-y"]);
    expect(conflicted.code).toBe(1);
    expect(conflicted.stderr).toBe("Failed to apply plan. Resource has been changed. Try again or use force apply.\n");

    const forced = await apply(["-y", "--force"]);
    expect(forced.stderr).toBe("");
    expect(forced.code).toBe(0);
    expect(fake.gateways.get("edge")?.wildcard_domain).toBe("example.com");
  });

  it("shows the server's message when the gateway is being deleted", async () => {
    fake.seed({ name: "edge" }, { to_be_deleted: true });
    const { code, stdout, stderr } = await apply(["-y"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Gateway edge is being deleted. Try again later.\n");
    expect(stdout).toBe("");
  });
});

describe("apply: Ctrl-C while provisioning", () => {
  const interruptOnFirstPoll = (io: TestIo) => {
    fake.onPoll = () => {
      fake.onPoll = null;
      io.interrupt();
    };
  };

  it("offers to delete the gateway, and deletes it on yes", async () => {
    const { code, stdout, io } = await apply([], { stdin: "y\ny\n", before: interruptOnFirstPoll });
    expect(code).toBe(130);
    expect(stdout).toContain("Delete the gateway before exiting? [y/n]: \n");
    expect(stdout).toMatch(/Gateway edge deleted\n$/);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
    expect(io.interruptListeners()).toBe(0);
  });

  it("leaves it provisioning on no", async () => {
    const { code, stdout } = await apply([], { stdin: "y\nn\n", before: interruptOnFirstPoll });
    expect(code).toBe(130);
    expect(stdout).toMatch(/\nExiting\.\.\. Gateway provisioning will continue in the background\.\n$/);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(false);
    expect(fake.calls()).not.toContain("DELETE /api/v1/projects/main/gateways/edge");
  });

  it("does not ask with -y and leaves it provisioning", async () => {
    const { code, stdout } = await apply(["-y"], { before: interruptOnFirstPoll });
    expect(code).toBe(130);
    expect(stdout).not.toContain("Delete the gateway before exiting?");
    expect(stdout).toMatch(/Exiting\.\.\. Gateway provisioning will continue in the background\.\n$/);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(false);
  });
});

describe("apply: terminal output", () => {
  it("uses bold keys and a spinner on a terminal, and none of it through a pipe", async () => {
    const tty = await apply(["-y"], { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.stdout).toContain("\x1b[1mProject\x1b[22m");
    expect(tty.stdout).toContain("Provisioning edge...");
    expect(tty.stdout).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Getting apply plan\.\.\./);

    await fake.stop();
    fake = await new FakeControlPlane().start();
    const piped = await apply(["-y"]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toContain("\x1b");
    expect(piped.stdout).not.toContain("Getting apply plan");
  });
});

describe("apply: control plane errors", () => {
  it("prints the server's message for a rejected token", async () => {
    const io = testIo({ env: { ...fake.env, GATEPLANE_TOKEN: "wrong" } });
    writeFileSync(join(io.cwd, "gateway.dstack.yml"), EDGE);
    expect(await run(["apply", "-y", "-f", "gateway.dstack.yml"], io)).toBe(1);
    expect(io.stderr.text).toBe("invalid or missing API token\n");
  });

  it("names the URL it could not reach", async () => {
    const url = fake.url;
    await fake.stop();
    const io = testIo({ env: { ...fake.env, GATEPLANE_URL: url } });
    writeFileSync(join(io.cwd, "gateway.dstack.yml"), EDGE);
    expect(await run(["apply", "-y", "-f", "gateway.dstack.yml"], io)).toBe(1);
    expect(io.stderr.text).toMatch(
      new RegExp(`^cannot reach the control plane at ${url}: connect ECONNREFUSED [^\\n]+\\n$`),
    );
    fake = await new FakeControlPlane().start();
  });
});
