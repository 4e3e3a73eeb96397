/**
 * Issue 11 item 13: users, API tokens, projects and members from the CLI, against the fake control
 * plane (whose account routes answer as worker/routes/users.ts and projects.ts do).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../test/fakes/control-plane/api.ts";
import { runCli, testIo } from "../test/support/cli-io.ts";
import { HELP } from "./help.ts";

let fake: FakeControlPlane;
beforeEach(async () => {
  fake = await new FakeControlPlane().start();
});
afterEach(async () => {
  await fake.stop();
});

const gateplane = (argv: string[], stdin?: string) => runCli(argv, testIo({ env: fake.env, stdin }));

describe("user", () => {
  it("whoami is the default", async () => {
    expect(await gateplane(["user"])).toMatchObject({ code: 0, stdout: "alice\n", stderr: "" });
    fake.accounts.globalAdmin = true;
    expect((await gateplane(["user", "whoami"])).stdout).toBe("alice (global admin)\n");
    expect(JSON.parse((await gateplane(["user", "--json"])).stdout)).toEqual({ user: "alice", global_admin: true });
  });

  it("create prints the new user's token once, and how to add them to a project", async () => {
    fake.accounts.globalAdmin = true;
    const { code, stdout, stderr } = await gateplane(["user", "create", "bob"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout.split("\n")).toEqual([
      "User bob created with an API token (id tok1)",
      `API token (shown once; only its hash is kept): gpt_tok1_${"s".repeat(32)}`,
      "Add them to a project: gateplane member add bob [--role admin]",
      "",
    ]);
    expect(fake.requests.at(-1)).toEqual({ method: "POST", path: "/api/v1/users", body: { name: "bob" } });
  });

  it("list shows users to a global admin", async () => {
    expect((await gateplane(["user", "list"])).stderr).toBe("This action needs a global admin token\n");
    fake.accounts.globalAdmin = true;
    fake.accounts.users.add("bob");
    const { code, stdout } = await gateplane(["user", "list"]);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n")).toEqual([
      "NAME   GLOBAL ADMIN  CREATED",
      "alice                2026-01-01",
      "bob                  2026-01-01",
    ]);
  });

  it("create shows the control plane's refusals", async () => {
    const notAdmin = await gateplane(["user", "create", "bob"]);
    expect(notAdmin).toMatchObject({ code: 1, stderr: "This action needs a global admin token\n" });
    fake.accounts.globalAdmin = true;
    const taken = await gateplane(["user", "create", "alice"]);
    expect(taken).toMatchObject({ code: 1, stderr: "User alice already exists\n" });
    const bad = await gateplane(["user", "create", "Bad Name"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^name: /);
    expect(await gateplane(["user", "create"])).toMatchObject({ code: 2 });
  });
});

describe("token", () => {
  it("create makes a token for the caller by default, or for --user", async () => {
    const mine = await gateplane(["token", "create", "--description", "laptop"]);
    expect(mine.stderr).toBe("");
    expect(mine.stdout).toMatch(/^Token tok1 created for alice\nAPI token \(shown once; .*\): gpt_tok1_/);
    expect(fake.calls().slice(-2)).toEqual(["GET /api/v1/me", "POST /api/v1/users/alice/tokens"]);
    expect(fake.requests.at(-1)?.body).toEqual({ description: "laptop" });

    const forBob = await gateplane(["token", "create", "--user", "bob"]);
    expect(forBob).toMatchObject({ code: 1, stderr: "User bob does not exist\n" });
    fake.accounts.users.add("bob");
    const other = await gateplane(["token", "create", "--user", "bob"]);
    expect(other).toMatchObject({ code: 1, stderr: "You can only create tokens for yourself\n" });
    fake.accounts.globalAdmin = true;
    const json = JSON.parse((await gateplane(["token", "create", "--user", "bob", "--json"])).stdout);
    expect(json).toMatchObject({ id: "tok2", user: "bob", token: expect.stringMatching(/^gpt_tok2_/) });
  });

  it("list shows the caller's tokens (or --user's) without secrets, revoked ones marked", async () => {
    await gateplane(["token", "create", "--description", "laptop"]);
    await gateplane(["token", "create", "--description", "ci"]);
    await gateplane(["token", "revoke", "tok2", "-y"]);
    const { code, stdout } = await gateplane(["token", "list"]);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split("\n")).toEqual([
      "ID    DESCRIPTION  CREATED     LAST USED  REVOKED",
      "tok1  laptop       2026-01-01  never",
      "tok2  ci           2026-01-01  never      2026-01-01",
    ]);
    expect(stdout).not.toContain("gpt_");
    fake.accounts.users.add("bob");
    const other = await gateplane(["token", "list", "--user", "bob"]);
    expect(other).toMatchObject({ code: 1, stderr: "You can only list your own tokens\n" });
  });

  it("lists without a subcommand: a bare token command mints nothing", async () => {
    const bare = await gateplane(["token"]);
    expect(bare).toMatchObject({ code: 0, stdout: "ID  DESCRIPTION  CREATED  LAST USED  REVOKED\n" });
    expect(fake.calls()).toEqual(["GET /api/v1/me", "GET /api/v1/users/alice/tokens"]);
  });

  it("revoke asks first, and -y does not", async () => {
    await gateplane(["token", "create"]);
    const no = await gateplane(["token", "revoke", "tok1"], "n\n");
    expect(no.stdout).toContain("Revoke the API token tok1? Whatever uses it is refused from now on. [y/n]");
    expect(fake.accounts.token("tok1")?.revoked).toBe(false);
    const yes = await gateplane(["token", "revoke", "tok1", "-y"]);
    expect(yes).toMatchObject({ code: 0, stdout: "Token tok1 revoked\n" });
    expect(fake.accounts.token("tok1")?.revoked).toBe(true);
    const missing = await gateplane(["token", "revoke", "nope", "-y"]);
    expect(missing).toMatchObject({ code: 1, stderr: "Token nope does not exist\n" });
  });
});

describe("project", () => {
  it("lists the caller's projects, creates (global admin) and shows one", async () => {
    const list = await gateplane(["project"]);
    expect(list.stdout.trimEnd().split("\n")).toEqual([
      "NAME  ROLE   DEFAULT GATEWAY  CREATED",
      "main  admin                   2026-01-01",
    ]);
    expect((await gateplane(["project", "create", "prod"])).stderr).toBe("This action needs a global admin token\n");
    fake.accounts.globalAdmin = true;
    const created = await gateplane(["project", "create", "prod"]);
    expect(created.stdout).toBe(
      "Project prod created\nAdd members: gateplane member add USER [--role admin] -p prod\n",
    );
    const dup = await gateplane(["project", "create", "prod"]);
    expect(dup).toMatchObject({ code: 1, stderr: "Project prod already exists\n" });
    const get = await gateplane(["project", "get"]);
    expect(get.stdout).toContain("Name             main\n");
    const json = JSON.parse((await gateplane(["project", "get", "prod", "--json"])).stdout);
    expect(json).toEqual({
      name: "prod",
      role: "admin",
      default_gateway: null,
      created_at: "2026-01-01T00:00:00.000Z",
    });
  });

  it("works without a configured project where none is needed", async () => {
    const env = { GATEPLANE_URL: fake.url, GATEPLANE_TOKEN: fake.token };
    const { code, stdout } = await runCli(["project", "list"], testIo({ env }));
    expect(code).toBe(0);
    expect(stdout).toContain("main  admin");
    expect((await runCli(["user"], testIo({ env }))).stdout).toBe("alice\n");
  });
});

describe("events", () => {
  const event = (id: number, gateway: string, type: string | null, message: string) => ({
    id,
    gateway_name: gateway,
    actor: type ? null : "alice",
    message,
    type,
    data: null,
    sequence: null,
    created_at: "2026-01-01T00:00:00.000Z",
  });

  it("shows the audit trail oldest first, filtered as asked", async () => {
    fake.accounts.events.push(
      event(1, "edge", null, "apply: created"),
      event(2, "edge", "gateway.status", "running"),
      event(3, "other", null, "delete"),
    );
    const all = await gateplane(["events"]);
    expect(all.stdout.trimEnd().split("\n")).toEqual([
      "TIME        GATEWAY  TYPE            ACTOR  MESSAGE",
      "2026-01-01  edge                     alice  apply: created",
      "2026-01-01  edge     gateway.status         running",
      "2026-01-01  other                    alice  delete",
    ]);
    const some = await gateplane(["events", "--gateway", "edge", "--limit", "1", "--json"]);
    expect(JSON.parse(some.stdout).events.map((e: { id: number }) => e.id)).toEqual([2]);
    expect(fake.requests.at(-1)?.path).toBe("/api/v1/projects/main/events");
    const bad = await gateplane(["events", "--type", "nope"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^type: expected one of gateway\./);
  });
});

describe("member", () => {
  it("lists, adds with a role (member by default), changes it, and removes", async () => {
    fake.accounts.users.add("bob");
    const added = await gateplane(["member", "add", "bob"]);
    expect(added).toMatchObject({ code: 0, stdout: "bob is a member of main with the member role\n" });
    expect(fake.requests.at(-1)).toEqual({
      method: "PUT",
      path: "/api/v1/projects/main/members/bob",
      body: { role: "member" },
    });
    await gateplane(["member", "add", "bob", "--role", "admin"]);
    const list = await gateplane(["member"]);
    expect(list.stdout.trimEnd().split("\n")).toEqual([
      "USER   ROLE   ADDED",
      "alice  admin  2026-01-01",
      "bob    admin  2026-01-01",
    ]);
    const removed = await gateplane(["member", "remove", "bob", "-y"]);
    expect(removed.stdout).toBe("bob removed from main\n");
    expect(fake.accounts.projects.get("main")?.has("bob")).toBe(false);
  });

  it("shows the control plane's field-named and permission errors", async () => {
    fake.accounts.users.add("bob");
    const badRole = await gateplane(["member", "add", "bob", "--role", "owner"]);
    expect(badRole).toMatchObject({ code: 1, stderr: "role: expected one of admin, member\n" });
    const nobody = await gateplane(["member", "add", "carol"]);
    expect(nobody.stderr).toBe("User carol does not exist\n");
    fake.accounts.projects.get("main")!.set("alice", "member");
    const notAdmin = await gateplane(["member", "remove", "bob", "-y"]);
    expect(notAdmin.stderr).toBe("This action needs the admin role in project main\n");
    const elsewhere = await gateplane(["member", "list", "-p", "other"]);
    expect(elsewhere.stderr).toBe("Project other does not exist\n");
  });

  it("documents every command in help", () => {
    for (const topic of ["user", "token", "project", "member", "events"] as const)
      expect(HELP[topic]).toMatch(/^Usage: /);
    expect(HELP.main).toContain("member [list]|add|remove");
  });
});
