import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Gateway } from "../schema/api.ts";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, type TestIo, tempDir, testIo } from "../test/support/cli-io.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
  fake.seed({ name: "edge", domain: "example.com" }, { default: true });
  fake.seed({ name: "multi", domain: "multi.example.com", replicas: 2, certificate: null });
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], options: { stdin?: string; io?: TestIo } = {}) =>
  runCli(argv, options.io ?? testIo({ env: fake.env, stdin: options.stdin }));

describe("gateway list", () => {
  it("is the default and prints every gateway, replicas as sub-rows", async () => {
    const bare = await gateplane(["gateway"]);
    const explicit = await gateplane(["gateway", "list"]);
    expect(bare.code).toBe(0);
    expect(bare.stdout).toBe(explicit.stdout);
    expect(bare.stdout.trimEnd().split("\n")).toEqual([
      "BACKEND  REGION     NAME          HOSTNAME  DOMAIN             DEFAULT  STATUS",
      "aws      eu-west-1  edge          10.0.0.1  example.com        ✓        running",
      "aws      eu-west-1  multi                   multi.example.com           running",
      "aws      eu-west-1     replica=0  10.0.0.1                              running",
      "aws      eu-west-1     replica=1  10.0.0.2                              running",
    ]);
  });

  it("adds CREATED and ERROR with -v", async () => {
    const { stdout } = await gateplane(["gateway", "list", "-v"]);
    expect(stdout.split("\n")[0]).toMatch(/STATUS +CREATED +ERROR$/);
  });

  it("prints {project, gateways} with --json and --format json", async () => {
    for (const flag of [["--json"], ["--format", "json"]]) {
      const { code, stdout } = await gateplane(["gateway", "list", ...flag]);
      expect(code).toBe(0);
      const body = JSON.parse(stdout) as { project: string; gateways: Gateway[] };
      expect(body.project).toBe("main");
      expect(body.gateways.map((g) => g.name)).toEqual(["edge", "multi"]);
    }
  });

  it("refreshes every 2 seconds with -w until Ctrl-C", async () => {
    const io = testIo({ env: fake.env });
    let lists = 0;
    fake.onRequest = (method, path) => {
      if (method === "GET" && path.endsWith("/gateways") && ++lists === 3) io.interrupt();
    };
    const { code, stdout, stderr } = await gateplane(["gateway", "list", "-w"], { io });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout.match(/^BACKEND/gm)).toHaveLength(2);
    expect(io.sleeps).toEqual([2000, 2000]);
    expect(io.interruptListeners()).toBe(0);
  });

  it("takes connection options before the command and project from -p", async () => {
    const io = testIo();
    const argv = ["--api-url", fake.url, "--token", fake.token, "gateway", "list", "-p", "elsewhere"];
    const { code, stderr } = await gateplane(argv, { io });
    expect(code).toBe(1);
    expect(stderr).toBe("Project elsewhere does not exist\n");
  });

  it("reads settings from the nearest .gateplane/config.json", async () => {
    const root = tempDir();
    mkdirSync(join(root, ".gateplane"));
    mkdirSync(join(root, "sub"));
    writeFileSync(
      join(root, ".gateplane", "config.json"),
      JSON.stringify({ url: fake.url, token: fake.token, project: "main" }),
    );
    const { code, stdout } = await gateplane(["gateway", "list"], { io: testIo({ cwd: join(root, "sub") }) });
    expect(code).toBe(0);
    expect(stdout).toContain("multi.example.com");
  });
});

describe("gateway get", () => {
  it("prints the gateway as JSON", async () => {
    const { code, stdout } = await gateplane(["gateway", "get", "edge", "--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ name: "edge", status: "running", default: true });
  });

  it("prints the whole gateway: summary, replicas, services, then the DNS records to create", async () => {
    fake.seedService({ name: "echo", gateway: "multi" }, [{ id: "r1", url: "http://10.1.0.5:8000" }]);
    fake.seedService({ name: "other", gateway: "edge" });
    const { code, stdout } = await gateplane(["gateway", "get", "multi"]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines.slice(0, 10).map((l) => l.replace(/ +/g, " "))).toEqual([
      "Name multi",
      "Project main",
      "Status running",
      "Backend aws eu-west-1",
      "Address (per replica)",
      "Domain multi.example.com",
      "Certificate none",
      "Router round robin (built-in)",
      "Default no",
      expect.stringMatching(/^Created /),
    ]);
    expect(lines.slice(10)).toEqual([
      "",
      "REPLICA  STATUS   ADDRESS   REGION     INSTANCE  AGENT  CONFIG",
      "0        running  10.0.0.1  eu-west-1  i-0       -      v2",
      "1        running  10.0.0.2  eu-west-1  i-1       -      v2",
      "",
      "NAME  GATEWAY  URL                            REPLICAS  CONFIG",
      "echo  multi    http://echo.multi.example.com  1         v2 applied",
      "",
      "To reach services on this gateway, create these DNS records:",
      "  *.multi.example.com  A      10.0.0.1",
      "  *.multi.example.com  A      10.0.0.2",
    ]);
  });

  it("shows a replica that rejected its latest configuration, and the services a replica refused", async () => {
    const multi = fake.gateways.get("multi")!;
    multi.replicas[0]!.agent = { registered_at: multi.created_at, last_seen_at: null, version: "0.4.1" };
    multi.replicas[0]!.config = {
      desired_version: 3,
      applied_version: 2,
      error: "invalid config document:\nversion",
      rejected_services: [],
    };
    multi.replicas[1]!.config = {
      desired_version: 3,
      applied_version: 3,
      error: null,
      rejected_services: [{ service: "echo", error: "services[0].client_max_body_size: too large", kept: true }],
    };
    const { stdout } = await gateplane(["gateway", "get", "multi"]);
    expect(stdout).toContain(
      "0        running  10.0.0.1  eu-west-1  i-0       0.4.1  v2 (v3 rejected: invalid config document: version)\n",
    );
    expect(stdout).toContain("1        running  10.0.0.2  eu-west-1  i-1       -      v3, rejects 1 service\n");
    expect(stdout).toContain(
      "REJECTED SERVICE  REPLICA  SERVING          ERROR\n" +
        "echo              1        last good state  services[0].client_max_body_size: too large\n",
    );
  });

  it("gives a one-replica gateway its replica's address as hostname in --json, as the Worker does", async () => {
    const { stdout } = await gateplane(["gateway", "get", "edge", "--json"]);
    const body = JSON.parse(stdout) as Gateway;
    expect(body.hostname).toBe("10.0.0.1");
    expect(body.hostname).toBe(body.replicas[0]!.hostname);
    expect((await gateplane(["gateway", "get", "edge"])).stdout).toMatch(/^Address +10\.0\.0\.1$/m);
  });

  it("tells to create a CNAME when the gateway's address is a DNS name", async () => {
    fake.seed(
      { name: "k8s", domain: "k8s.example.com", backend: "kubernetes", region: "cluster" },
      { dns_records: [{ name: "*.k8s.example.com", type: "CNAME", value: "a1b2.elb.amazonaws.com" }] },
    );
    const { stdout } = await gateplane(["gateway", "get", "k8s"]);
    expect(stdout).toContain("  *.k8s.example.com  CNAME  a1b2.elb.amazonaws.com\n");
    expect(stdout).toContain("create a CNAME record, not an A record");
  });

  it("prints the server's message for an unknown gateway", async () => {
    const { code, stdout, stderr } = await gateplane(["gateway", "get", "nope", "--json"]);
    expect(code).toBe(1);
    expect(stderr).toBe("Gateway nope does not exist\n");
    expect(stdout).toBe("");
  });
});

describe("gateway delete", () => {
  it("shows the gateway, asks, and deletes it", async () => {
    const { code, stdout } = await gateplane(["gateway", "delete", "edge"], { stdin: "y\n" });
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^BACKEND[^\n]+\naws +eu-west-1 +edge [^\n]+running\nDo you want to delete the gateway\? \[y\/n\]: \nGateway deleted\n$/,
    );
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("keeps it on no and does not ask with -y", async () => {
    const declined = await gateplane(["gateway", "delete", "edge"], { stdin: "n\n" });
    expect(declined.stdout).toMatch(/\nExiting\.\.\.\n$/);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(false);

    const forced = await gateplane(["gateway", "delete", "multi", "-y"]);
    expect(forced.stdout).not.toContain("[y/n]");
    expect(forced.stdout).toMatch(/\nGateway deleted\n$/);
    expect(fake.gateways.get("multi")?.to_be_deleted).toBe(true);
  });

  it("lists the services that go with it, and cascades only after yes (or -y)", async () => {
    fake.seedService({ name: "echo", gateway: "multi", https: false }, [{ id: "r1", url: "http://10.1.0.1:80" }]);
    const declined = await gateplane(["gateway", "delete", "multi"], { stdin: "n\n" });
    expect(declined.stdout).toContain(
      "\nDeleting gateway multi also deletes its 1 service and their 1 replica registration:\n- echo (1 replica)\n\n" +
        "Do you want to delete the gateway and its service? [y/n]: \n\nExiting...\n",
    );
    expect(fake.gateways.get("multi")?.to_be_deleted).toBe(false);
    const confirmed = await gateplane(["gateway", "delete", "multi"], { stdin: "y\n" });
    expect(confirmed.stdout).toMatch(/\nGateway deleted with echo\n$/);
    expect(fake.gateways.get("multi")?.to_be_deleted).toBe(true);

    fake.seedService({ name: "chat", gateway: "edge", https: false });
    const forced = await gateplane(["gateway", "delete", "edge", "-y"]);
    expect(forced.stdout).not.toContain("[y/n]");
    expect(forced.stdout).toMatch(/\nGateway deleted with chat\n$/);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("fails for an unknown gateway without asking", async () => {
    const { code, stdout, stderr } = await gateplane(["gateway", "delete", "nope"], { stdin: "y\n" });
    expect(code).toBe(1);
    expect(stderr).toBe("Gateway nope does not exist\n");
    expect(stdout).toBe("");
  });
});

describe("gateway update", () => {
  it("makes a gateway the project's default", async () => {
    const { code, stdout } = await gateplane(["gateway", "update", "multi", "--set-default"]);
    expect(code).toBe(0);
    expect(stdout.split("\n")[1]).toMatch(/^aws +eu-west-1 +multi +multi\.example\.com +✓ +running$/);
    expect(fake.calls()).toEqual(["POST /api/v1/projects/main/gateways/multi/set-default"]);
    expect(fake.gateways.get("edge")?.default).toBe(false);
  });
});
