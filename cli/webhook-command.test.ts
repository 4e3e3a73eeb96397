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

describe("webhook add", () => {
  it("registers an endpoint and prints its secret once", async () => {
    const { code, stdout, stderr } = await gateplane([
      "webhook",
      "add",
      "--url",
      "https://hooks.example.com/gp",
      "--events",
      "gateway.*, service.scaling",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Webhook wh_fake1 created for https:\/\/hooks\.example\.com\/gp\n/);
    expect(stdout).toContain("Signing secret (shown once; keep it to verify deliveries): whsec_");
    expect(fake.requests.at(-1)).toEqual({
      method: "POST",
      path: "/api/v1/projects/main/webhooks",
      body: { url: "https://hooks.example.com/gp", events: ["gateway.*", "service.scaling"] },
    });
  });

  it("shows the control plane's field-named error and exits 1", async () => {
    const { code, stderr } = await gateplane(["webhook", "add", "--url", "http://example.com/x", "--events", "*"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^url: expected an https:\/\/ URL/);
    const bad = await gateplane(["webhook", "add", "--url", "https://e.com/x", "--events", "gateway.bogus"]);
    expect(bad.stderr).toMatch(/^events\[0\]: expected an event type/);
    expect(fake.webhooks.webhooks.size).toBe(0);
  });

  it("refuses a command line without --url or --events (exit 2, nothing sent)", async () => {
    const noUrl = await gateplane(["webhook", "add", "--events", "*"]);
    expect(noUrl).toMatchObject({ code: 2, stderr: "gateplane webhook add: --url URL is required\n" });
    const noEvents = await gateplane(["webhook", "add", "--url", "https://e.com/x"]);
    expect(noEvents.code).toBe(2);
    expect(noEvents.stderr).toMatch(/--events TYPES is required/);
    const unknown = await gateplane(["webhook", "frob"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frob'; expected list, add, get/);
    expect(fake.requests).toEqual([]);
  });
});

describe("webhook signing secrets", () => {
  const SECRET = "my-own-signing-secret-0123456789";

  it("reads a chosen secret from a named variable or a file, never the command line", async () => {
    const add = ["webhook", "add", "--url", "https://e.com/x", "--events", "*"];
    const fromEnv = await runCli(
      [...add, "--secret-env", "HOOK_SECRET"],
      testIo({ env: { ...fake.env, HOOK_SECRET: SECRET } }),
    );
    expect(fromEnv.code).toBe(0);
    expect(fake.requests.at(-1)!.body).toMatchObject({ secret: SECRET });
    const hook = [...fake.webhooks.webhooks.keys()][0]!;
    const fromStdin = await gateplane(["webhook", "update", hook, "--secret-file", "-"], `${SECRET}-2\n`);
    expect(fromStdin.code).toBe(0);
    expect(fake.requests.at(-1)!.body).toEqual({ secret: `${SECRET}-2` });
  });

  it("refuses --secret VALUE with where to put it instead, and sends nothing", async () => {
    for (const argv of [
      ["webhook", "add", "--url", "https://e.com/x", "--events", "*", "--secret", SECRET],
      ["webhook", "update", "wh_x", `--secret=${SECRET}`],
    ]) {
      const { code, stderr } = await gateplane(argv);
      expect(code).toBe(2);
      expect(stderr).toMatch(/--secret would put a secret on the command line, where other users see it \(ps\)/);
      expect(stderr).toContain("give --secret-env NAME or --secret-file PATH (- for stdin)");
      expect(stderr).not.toContain(SECRET);
    }
    const unset = await gateplane(["webhook", "update", "wh_x", "--secret-env", "NOPE"]);
    expect(unset).toMatchObject({
      code: 2,
      stderr: "gateplane webhook update: --secret-env: the environment variable NOPE is not set\n",
    });
    expect(fake.requests).toEqual([]);
  });
});

describe("webhook list, get, deliveries", () => {
  it("lists endpoints with their status", async () => {
    fake.webhooks.seed({ url: "https://a.example.com/h", events: ["gateway.*"] });
    fake.webhooks.seed({
      url: "https://b.example.com/h",
      events: ["service.scaling", "webhook.disabled"],
      enabled: false,
      disabled_reason: "the endpoint answered 410 Gone",
    });
    fake.webhooks.seed({ url: "https://c.example.com/h", consecutive_failures: 3 });
    const bare = await gateplane(["webhook"]);
    expect(bare.code).toBe(0);
    expect(bare.stdout.trimEnd().split("\n")).toEqual([
      "ID        URL                      EVENTS                            STATUS                                    CREATED",
      "wh_fake1  https://a.example.com/h  gateway.*                         enabled                                   1 min ago",
      "wh_fake2  https://b.example.com/h  service.scaling,webhook.disabled  disabled: the endpoint answered 410 Gone  1 min ago",
      "wh_fake3  https://c.example.com/h  *                                 failing (3 in a row)                      1 min ago",
    ]);
    const json = JSON.parse((await gateplane(["webhook", "list", "--json"])).stdout);
    expect(json.webhooks.map((w: { id: string }) => w.id)).toEqual(["wh_fake1", "wh_fake2", "wh_fake3"]);
  });

  it("shows one endpoint, and says when it does not exist", async () => {
    fake.webhooks.seed({ url: "https://a.example.com/h", events: ["gateway.*"] });
    const { stdout } = await gateplane(["webhook", "get", "wh_fake1"]);
    expect(stdout).toMatch(/^ID +wh_fake1\nURL +https:\/\/a\.example\.com\/h\nEvents +gateway\.\*\n/);
    expect(stdout).toMatch(/\nStatus +enabled\nLast success +never\n/);
    const missing = await gateplane(["webhook", "get", "wh_nope"]);
    expect(missing).toMatchObject({ code: 1, stderr: "Webhook wh_nope does not exist in project main\n" });
  });

  it("prints the delivery log with results and retry times", async () => {
    const hook = fake.webhooks.seed();
    fake.webhooks.seedDelivery(hook.id);
    fake.webhooks.seedDelivery(hook.id, {
      event_type: "service.scaling",
      state: "pending",
      attempts: 2,
      last_status: 503,
      next_attempt_at: new Date(Date.now() + 20_000).toISOString(),
    });
    fake.webhooks.seedDelivery(hook.id, {
      state: "failed",
      attempts: 31,
      last_status: null,
      last_error: "no answer within 10 s",
    });
    const { stdout } = await gateplane(["webhook", "deliveries", hook.id]);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID +EVENT +GATEWAY +SEQ +STATE +ATTEMPTS +RESULT +NEXT +CREATED$/);
    expect(lines[1]).toMatch(/^3 +gateway\.status +edge +3 +failed +31 +no answer within 10 s +30 sec ago$/);
    expect(lines[2]).toMatch(/^2 +service\.scaling +edge +2 +pending +2 +HTTP 503 +in (19|20) sec +30 sec ago$/);
    expect(lines[3]).toMatch(/^1 +gateway\.status +edge +1 +delivered +1 +HTTP 200 +30 sec ago$/);
  });
});

describe("webhook update, ping, redeliver, delete", () => {
  it("re-enables, rotates the secret and sends only what changed", async () => {
    const hook = fake.webhooks.seed({ enabled: false, disabled_reason: "x" });
    const enabled = await gateplane(["webhook", "update", hook.id, "--enable"]);
    expect(enabled.stdout).toBe("Webhook wh_fake1 updated (enabled)\n");
    expect(fake.requests.at(-1)!.body).toEqual({ enabled: true });
    const rotated = await gateplane(["webhook", "update", hook.id, "--rotate-secret"]);
    expect(rotated.stdout).toMatch(/^Webhook wh_fake1 updated \(enabled\)\nNew signing secret \(shown once\): whsec_/);
    expect(rotated.stdout).toMatch(/previous secret also signs deliveries until \d{4}-/);
    const nothing = await gateplane(["webhook", "update", hook.id]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/nothing to change/);
    const both = await gateplane(["webhook", "update", hook.id, "--enable", "--disable"]);
    expect(both.code).toBe(2);
  });

  it("pings: exit 0 when delivered, 1 with the receiver's answer otherwise", async () => {
    const hook = fake.webhooks.seed();
    const ok = await gateplane(["webhook", "ping", hook.id]);
    expect(ok).toMatchObject({ code: 0, stdout: "Delivered ping ping_fake to wh_fake1: HTTP 200\n" });
    fake.webhooks.receiverStatus = 500;
    const failed = await gateplane(["webhook", "ping", hook.id]);
    expect(failed).toMatchObject({ code: 1, stderr: "gateplane webhook ping: delivery 2 failed: HTTP 500\n" });
    fake.webhooks.receiverStatus = 200;
    const redone = await gateplane(["webhook", "redeliver", hook.id, "2"]);
    expect(redone.stdout).toBe("Delivered ping ping_fake to wh_fake1: HTTP 200\n");
    expect(fake.calls().at(-1)).toBe("POST /api/v1/projects/main/webhooks/wh_fake1/deliveries/2/redeliver");
  });

  it("deletes after confirmation", async () => {
    const hook = fake.webhooks.seed();
    const no = await gateplane(["webhook", "delete", hook.id], "n\n");
    expect(no.stdout).toMatch(/Exiting\.\.\.\n$/);
    expect(fake.webhooks.webhooks.size).toBe(1);
    const yes = await gateplane(["webhook", "delete", hook.id, "-y"]);
    expect(yes.stdout).toMatch(/Webhook wh_fake1 deleted\n$/);
    expect(fake.webhooks.webhooks.size).toBe(0);
  });

  it("has help", async () => {
    const { stdout } = await gateplane(["webhook", "--help"]);
    expect(stdout).toBe(`${HELP.webhook}\n`);
    expect((await gateplane(["--help"])).stdout).toContain("webhook [list]");
  });
});
