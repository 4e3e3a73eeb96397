import { createServer, type Server } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, testIo } from "../test/support/cli-io.ts";
import { HELP } from "./help.ts";

const TOKEN = "gps_AbCdEfGhIjKl_0123456789abcdefghijABCDEFGHIJ01";
const CREATED = { id: "AbCdEfGhIjKl", description: "ci", created_by: "alice", created_at: "2026-01-01T00:00:00.000Z" };

/** The three service-token endpoints, recording what the CLI sent. */
let server: Server;
let seen: { method: string; url: string; body: string }[];
let env: Record<string, string>;
beforeEach(async () => {
  seen = [];
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", body });
      const json = (status: number, value: unknown) =>
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.method === "POST") return json(201, { ...CREATED, token: TOKEN });
      if (req.method === "GET") return json(200, { service_tokens: [CREATED] });
      if (req.url?.endsWith("/nope")) return json(404, { error: { code: "not_found", message: "no such token" } });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  env = { GATEPLANE_URL: `http://127.0.0.1:${port}`, GATEPLANE_TOKEN: "gpt_x", GATEPLANE_PROJECT: "main" };
});
afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const gateplane = (argv: string[], stdin?: string) => runCli(argv, testIo({ env, stdin }));

describe("gateplane service-token", () => {
  it("create -q prints only the token, for TOKEN=$(gateplane service-token create -q)", async () => {
    const run = await gateplane(["service-token", "create", "-q", "--description", "ci"]);
    expect(run).toMatchObject({ code: 0, stdout: `${TOKEN}\n`, stderr: "" });
    expect(seen).toEqual([
      { method: "POST", url: "/api/v1/projects/main/service-tokens", body: '{"description":"ci"}' },
    ]);
  });

  it("create prints the token once with what it opens", async () => {
    const run = await gateplane(["service-token", "create"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`\n${TOKEN}\n`);
    expect(run.stdout).toMatch(/auth: true/);
    expect(seen[0]!.body).toBe("{}");
  });

  it("lists without secrets, revokes by id after confirmation", async () => {
    const list = await gateplane(["service-token"]);
    expect(list.stdout).toMatch(/^ID +DESCRIPTION +CREATED BY +CREATED\nAbCdEfGhIjKl +ci +alice /);
    const refused = await gateplane(["service-token", "revoke", "AbCdEfGhIjKl"], "n\n");
    expect(refused.stdout).toContain("Exiting...");
    expect(seen.filter((s) => s.method === "DELETE")).toEqual([]);
    const revoked = await gateplane(["service-token", "revoke", "AbCdEfGhIjKl", "-y"]);
    expect(revoked).toMatchObject({ code: 0, stdout: "Service token AbCdEfGhIjKl revoked\n" });
    expect(seen.at(-1)).toMatchObject({ method: "DELETE", url: "/api/v1/projects/main/service-tokens/AbCdEfGhIjKl" });
    const missing = await gateplane(["service-token", "revoke", "nope", "-y"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no such token");
  });

  it("has help and refuses misuse", async () => {
    expect((await gateplane(["service-token", "--help"])).stdout).toBe(`${HELP["service-token"]}\n`);
    expect((await gateplane(["--help"])).stdout).toContain("service-token");
    expect((await gateplane(["service-token", "revoke"])).code).toBe(2);
    expect((await gateplane(["service-token", "frob"])).stderr).toMatch(/unknown command 'frob'/);
  });
});
