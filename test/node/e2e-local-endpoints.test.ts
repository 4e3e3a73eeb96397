/**
 * The endpoints the CLI prints for a local gateway work verbatim with the clients a newcomer uses:
 * the real `openai` Node client, Python's urllib and curl, with the system resolver (no custom
 * lookup, no hand-set Host). `*.localhost` names resolve in curl and browsers only, so the printed
 * URLs must name an address.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../fakes/model-server.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { ROOT, cli as run } from "../support/stack.ts";

const run$ = promisify(execFile);
let stack: SharedStack;
let dir: string;
let model: FakeModelServer;

beforeAll(async () => {
  model = await startFakeModelServer("m");
  stack = await sharedStack("endpoints");
  dir = stack.dir;
}, 120_000);

afterAll(async () => {
  await stack?.release();
  await model?.close();
}, 60_000);

/** The value printed after `label` by the CLI. */
function printed(stdout: string, label: string): string {
  const line = stdout.split("\n").find((l) => l.startsWith(label));
  if (!line) throw new Error(`no "${label}" in:\n${stdout}`);
  return line.slice(label.length).trim();
}

const PYTHON_POST = `
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=json.dumps({"model": "m1", "messages": [{"role": "user", "content": "hi"}]}).encode(), headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=20))["choices"][0]["message"]["content"])
`;

describe("printed endpoints of a local gateway", () => {
  it("work with the openai client, urllib and curl", async () => {
    const gateway = await run(stack, "apply", "-f", path.join(ROOT, "examples/local-gateway.dstack.yml"), "-y");
    expect(gateway.code, gateway.stderr).toBe(0);
    const file = path.join(dir, "chat.dstack.yml");
    await writeFile(file, "type: service\nname: chat\ngateway: local-gateway\nhttps: false\nauth: false\nmodel: m1\n");
    const applied = await run(stack, "apply", "-f", file, "-y");
    expect(applied.code, applied.stderr).toBe(0);
    const serviceUrl = printed(applied.stdout, "Service is available at");
    const modelEndpoint = printed(applied.stdout, "Model endpoint:");
    // Names under .localhost resolve only where NSS knows them (curl and browsers special-case them).
    expect(isIP(new URL(serviceUrl).hostname)).not.toBe(0);
    expect(isIP(new URL(modelEndpoint).hostname)).not.toBe(0);

    const replica = await fetch(`${stack.url}/api/v1/projects/${stack.project}/services/chat/replicas/r1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
      body: JSON.stringify({ url: model.url }),
    });
    expect(replica.ok).toBe(true);

    const answer = TOKENS.join("");
    const client = new OpenAI({ baseURL: modelEndpoint, apiKey: "unused", maxRetries: 0, timeout: 20_000 });
    // The new replica reaches the gateway's agent asynchronously: the first answers may be 503.
    let chat: OpenAI.Chat.Completions.ChatCompletion | null = null;
    for (let attempt = 0; chat === null; attempt++) {
      try {
        chat = await client.chat.completions.create({ model: "m1", messages: [{ role: "user", content: "hi" }] });
      } catch (error) {
        if (!(error instanceof OpenAI.APIError && error.status === 503) || attempt > 200) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(chat.choices[0]?.message.content).toBe(answer);
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(["m1"]);
    const direct = new OpenAI({ baseURL: new URL("v1", serviceUrl).href, apiKey: "unused", maxRetries: 0 });
    const viaService = await direct.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(viaService.choices[0]?.message.content).toBe(answer);

    for (const url of [`${modelEndpoint}/chat/completions`, new URL("v1/chat/completions", serviceUrl).href]) {
      const python = await run$("python3", ["-c", PYTHON_POST, url]);
      expect(python.stdout.trim()).toBe(answer);
      const curl = await run$("curl", [
        "-sS",
        "--fail",
        "-H",
        "content-type: application/json",
        "-d",
        '{"model":"m1","messages":[]}',
        url,
      ]);
      expect(JSON.parse(curl.stdout).choices[0].message.content).toBe(answer);
    }
    const models = await run$("curl", ["-sS", "--fail", `${modelEndpoint}/models`]);
    expect(JSON.parse(models.stdout).data[0].id).toBe("m1");
  }, 120_000);
});
