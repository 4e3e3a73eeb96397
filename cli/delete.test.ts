import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

async function deleteFile(args: string[], file: string, stdin?: string) {
  const io = testIo({ env: fake.env, stdin });
  writeFileSync(join(io.cwd, "gateway.dstack.yml"), file);
  return runCli(["delete", "-f", "gateway.dstack.yml", ...args], io);
}

const EDGE = "type: gateway\nname: edge\nbackend: aws\nregion: eu-west-1\n";

describe("delete -f", () => {
  it("deletes the named gateway after confirmation", async () => {
    fake.seed({ name: "edge" });
    const { code, stdout, stderr } = await deleteFile([], EDGE, "y\n");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe("Delete the gateway edge? [y/n]: \nGateway edge deleted\n");
    expect(fake.calls()).toEqual([
      "GET /api/v1/projects/main/gateways/edge",
      "GET /api/v1/projects/main/services",
      "DELETE /api/v1/projects/main/gateways/edge",
    ]);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("lists the services that go with the gateway, and cascades only after yes", async () => {
    fake.seed({ name: "edge", certificate: null });
    fake.seedService({ name: "echo", gateway: "edge", https: false }, [
      { id: "r1", url: "http://10.1.0.1:80" },
      { id: "r2", url: "http://10.1.0.2:80" },
    ]);
    fake.seedService({ name: "chat", gateway: "edge", https: false });
    const notice =
      "Deleting gateway edge also deletes its 2 services and their 2 replica registrations:\n" +
      "- echo (2 replicas)\n- chat (0 replicas)\n\n";
    const declined = await deleteFile([], EDGE, "n\n");
    expect(declined.stdout).toBe(`${notice}Delete the gateway edge and its 2 services? [y/n]: \n\nExiting...\n`);
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(false);

    const { code, stdout } = await deleteFile([], EDGE, "y\n");
    expect(code).toBe(0);
    expect(stdout).toBe(
      `${notice}Delete the gateway edge and its 2 services? [y/n]: \nGateway edge and its 2 services deleted\n`,
    );
    expect(fake.calls()).toContain("DELETE /api/v1/projects/main/gateways/edge");
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("-y implies the cascade", async () => {
    fake.seed({ name: "edge", certificate: null });
    fake.seedService({ name: "echo", gateway: "edge", https: false });
    const { code, stdout } = await deleteFile(["-y"], EDGE);
    expect(code).toBe(0);
    expect(stdout).toContain("Gateway edge and its service deleted\n");
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(true);
  });

  it("does not ask with -y", async () => {
    fake.seed({ name: "edge" });
    const { code, stdout } = await deleteFile(["-y"], EDGE);
    expect(code).toBe(0);
    expect(stdout).toBe("Gateway edge deleted\n");
  });

  it("keeps the gateway when the answer is no", async () => {
    fake.seed({ name: "edge" });
    const { code, stdout } = await deleteFile([], EDGE, "n\n");
    expect(code).toBe(0);
    expect(stdout).toBe("Delete the gateway edge? [y/n]: \n\nExiting...\n");
    expect(fake.gateways.get("edge")?.to_be_deleted).toBe(false);
  });

  it("fails for a gateway that does not exist", async () => {
    const { code, stdout, stderr } = await deleteFile(["-y"], EDGE);
    expect(code).toBe(1);
    expect(stderr).toBe("Gateway edge does not exist\n");
    expect(stdout).toBe("");
    expect(fake.calls()).toEqual(["GET /api/v1/projects/main/gateways/edge"]);
  });

  it("fails for a configuration without a name, before contacting the control plane", async () => {
    const { code, stderr } = await deleteFile(["-y"], "type: gateway\nbackend: local\n");
    expect(code).toBe(1);
    expect(stderr).toBe("Configuration specifies no gateway to delete\n");
    expect(fake.requests).toEqual([]);
  });
});

describe("delete -f with a service file", () => {
  const ECHO = "type: service\nname: echo\ngateway: local-gateway\nhttps: false\n";
  const seedEcho = () => {
    fake.seed({ name: "local-gateway", backend: "local", domain: "localhost" });
    fake.seedService({ name: "echo", gateway: "local-gateway", https: false }, [
      { id: "r1", url: "http://127.0.0.1:9001" },
    ]);
  };

  it("deletes the named service after confirmation, at once", async () => {
    seedEcho();
    const { code, stdout, stderr } = await deleteFile([], ECHO, "y\n");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe("Delete the service echo? [y/n]: \nService echo deleted\n");
    expect(fake.calls()).toEqual([
      "GET /api/v1/projects/main/services/echo",
      "DELETE /api/v1/projects/main/services/echo",
    ]);
    expect(fake.services.has("echo")).toBe(false);
    expect(fake.gateways.get("local-gateway")?.to_be_deleted).toBe(false);
  });

  it("keeps it on no, and does not ask with -y", async () => {
    seedEcho();
    const declined = await deleteFile([], ECHO, "n\n");
    expect(declined.stdout).toBe("Delete the service echo? [y/n]: \n\nExiting...\n");
    expect(fake.services.has("echo")).toBe(true);
    const forced = await deleteFile(["-y"], ECHO);
    expect(forced.stdout).toBe("Service echo deleted\n");
    expect(fake.services.has("echo")).toBe(false);
  });

  it("fails for a service that does not exist", async () => {
    const { code, stdout, stderr } = await deleteFile(["-y"], ECHO);
    expect(code).toBe(1);
    expect(stderr).toBe("Service echo does not exist\n");
    expect(stdout).toBe("");
    expect(fake.calls()).toEqual(["GET /api/v1/projects/main/services/echo"]);
  });

  it("validates the file first, at file:line:col", async () => {
    const { code, stderr } = await deleteFile(["-y"], "type: service\nname: Echo\n");
    expect(code).toBe(1);
    expect(stderr).toMatch(/^gateway\.dstack\.yml:2:7: name: must start with a lowercase letter/);
    expect(fake.requests).toEqual([]);
  });
});
