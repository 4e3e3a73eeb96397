/**
 * End to end (issue 11, item 4): the README's service walkthrough with `auth: true`, through the
 * real Worker and the real proxy of a local gateway. A replica never receives a token that works on
 * the control plane: a service token opens the service (host and OpenAI entrypoint), the gateway
 * strips it before the replica, API tokens are refused at the gateway, and whatever credentials
 * the replica did see are refused by the API. Everything goes where a user goes: the URLs `apply`
 * printed, the `openai` client as the README configures it, no hand-set Host and no custom lookup;
 * the last test runs the README's own replica command, curl line and client snippet.
 */

import { execFile, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { freePort, ROOT, cli as run, until } from "../support/stack.ts";

let stack: SharedStack;
let gatewayPort: number;
/** What `apply` printed for the service: its URL and the model endpoint. */
let serviceUrl: string;
let modelEndpoint: string;
let replica: Server;
/** Every header list the replica received. */
const received: string[][] = [];
const cli = (...args: string[]) => run(stack, ...args);

async function api(method: string, route: string, token = stack.token) {
  const res = await fetch(`${stack.url}/api/v1${route}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

async function get(authorization?: string): Promise<{ status: number; body: string }> {
  const res = await fetch(serviceUrl, { headers: authorization ? { authorization } : {} });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  replica = createServer((req, res) => {
    received.push(req.rawHeaders);
    req.resume();
    const completion = {
      id: "c1",
      object: "chat.completion",
      created: 0,
      model: "echo",
      choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }],
    };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(completion));
  });
  await new Promise<void>((resolve) => replica.listen(0, "127.0.0.1", resolve));
  // npm start's project, as the README's commands name it (no other file of the run uses it).
  stack = await sharedStack("tokens", { project: "main" });
  expect((await cli("apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y")).code).toBe(0);
  const gateway = (await api("GET", `/projects/${stack.project}/gateways/local-gateway`)).body as Gateway;
  gatewayPort = Number(gateway.replicas[0]!.hostname!.split(":")[1]);
  const applied = await cli("apply", "-f", path.join(ROOT, "examples/local-service.dstack.yml"), "-y");
  expect(applied.code).toBe(0);
  serviceUrl = applied.stdout.match(/Service is available at (\S+)/)?.[1] ?? "";
  modelEndpoint = applied.stdout.match(/Model endpoint: (\S+)/)?.[1] ?? "";
  expect(serviceUrl).toBe(`http://127.0.0.1:${gatewayPort}/proxy/services/${stack.project}/echo/`);
  expect(modelEndpoint).toBe(`http://127.0.0.1:${gatewayPort}/v1`);
  const url = `http://127.0.0.1:${(replica.address() as { port: number }).port}`;
  expect((await cli("service", "replica", "add", "echo", "--id", "r1", "--url", url)).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await stack?.release();
  replica?.closeAllConnections();
  await new Promise((resolve) => replica?.close(resolve));
}, 60_000);

describe("an auth: true service, end to end", () => {
  it("opens with a service token, refuses API tokens, and never hands the replica a credential", async () => {
    const created = await cli("service-token", "create", "-q");
    expect(created.stderr).toBe("");
    const token = created.stdout.trim();
    expect(token).toMatch(/^gps_/);

    // The new token reaches the gateway as a configuration version.
    const inSync = async () => {
      const s = (await api("GET", `/projects/${stack.project}/services/echo`)).body as Service;
      return s.gateway_replicas.length > 0 && s.gateway_replicas.every((r) => r.state === "in_sync");
    };
    await until("configuration applied", inSync);
    await until("token accepted", async () => (await get(`Bearer ${token}`)).status === 200);

    expect((await get()).status).toBe(401);
    const withApiToken = await get(`Bearer ${stack.token}`);
    expect(withApiToken.status).toBe(403);
    const user = await fetch(`${stack.url}/api/v1/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: stack.scoped("alice") }),
    });
    const alice = ((await user.json()) as { token: string }).token;
    await fetch(`${stack.url}/api/v1/projects/${stack.project}/members/${stack.scoped("alice")}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ role: "admin" }),
    });
    const withMemberToken = await get(`Bearer ${alice}`);
    expect(withMemberToken.status).toBe(403);
    expect(JSON.parse(withMemberToken.body).error).toMatch(/an API token \(gpt_…\) does not open services/);

    // The OpenAI entrypoint, with the real client as a user configures it: the printed endpoint.
    const client = new OpenAI({ apiKey: token, baseURL: modelEndpoint });
    const reply = await client.chat.completions.create({ model: "echo", messages: [{ role: "user", content: "hi" }] });
    expect(reply.choices[0]!.message.content).toBe("hello");

    // The service token does not open the API, and says why.
    const onApi = await api("GET", "/me", token);
    expect(onApi.status).toBe(401);
    expect(onApi.body.error.message).toMatch(/service token/);

    // What the replica saw: no Authorization at all, and no header value that works on the API.
    expect(received.length).toBeGreaterThanOrEqual(2);
    const values = new Set<string>();
    for (const headers of received) {
      for (let i = 0; i < headers.length; i += 2) {
        expect(headers[i]!.toLowerCase()).not.toBe("authorization");
        values.add(headers[i + 1]!);
      }
    }
    for (const value of values) {
      const candidate = value.replace(/^Bearer\s+/i, "");
      expect((await api("GET", "/me", candidate)).status, `replica saw ${value}`).toBe(401);
    }

    // Revoked: the gateway stops accepting it within a configuration version.
    const id = token.split("_")[1]!;
    expect((await cli("service-token", "revoke", id, "-y")).code).toBe(0);
    await until("token refused", async () => (await get(`Bearer ${token}`)).status === 403);
  });

  it("works as the README shows it: its replica, its curl line and its openai snippet, verbatim", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    // The README's replica, on a free port instead of 9001 (the only change).
    const serverLine = readme.match(/^\$ node -e '(.+)\.listen\(9001\)' &$/m)?.[1];
    expect(serverLine).toBeDefined();
    const port = await freePort();
    const server = spawn(process.execPath, ["-e", `${serverLine}.listen(${port}, "127.0.0.1")`], { stdio: "ignore" });
    try {
      await until(
        "README replica listening",
        async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => null))?.ok === true,
      );
      expect(
        (await cli("service", "replica", "add", "echo", "--id", "r1", "--url", `http://127.0.0.1:${port}`)).code,
      ).toBe(0);
      const token = (await cli("service-token", "create", "-q")).stdout.trim();
      await until("token accepted", async () => (await get(`Bearer ${token}`)).status === 200);

      // The curl line, with the gateway's port where the README shows 45531.
      const curlLine = readme.match(/^\$ curl -H "Authorization: Bearer \$TOKEN" (\S+)/m)?.[1];
      expect(curlLine).toBe("http://127.0.0.1:45531/proxy/services/main/echo/");
      const curlUrl = curlLine!.replace("45531", String(gatewayPort));
      const curled = await new Promise<string>((resolve, reject) =>
        execFile("curl", ["-sS", "-H", `Authorization: Bearer ${token}`, curlUrl], (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
      expect(JSON.parse(curled).choices[0].message.content).toBe("hello");

      // The JS snippet, run as a module with TOKEN in its environment, as the README says.
      const snippet = readme.match(/```js\n([\s\S]+?)```/)?.[1];
      expect(snippet).toContain(`baseURL: "http://127.0.0.1:45531/v1"`);
      const script = path.join(ROOT, `.readme-snippet-${process.pid}.mjs`);
      await writeFile(script, snippet!.replace("45531", String(gatewayPort)));
      try {
        const printed = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [script], { env: { ...process.env, TOKEN: token } }, (err, stdout, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
          ),
        );
        expect(printed.trim()).toBe("hello");
      } finally {
        await rm(script, { force: true });
      }
    } finally {
      server.kill();
    }
  });
});
