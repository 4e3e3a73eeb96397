import { request } from "node:http";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../test/fakes/model-server.ts";
import { startReplica, type TestReplica } from "../test/fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../test/support/config-builder.ts";
import { send } from "../test/support/http-client.ts";
import { type ProxyHandle, startProxy } from "./index.ts";

const ENTRYPOINT = `gateway.${DOMAIN}`;

let proxy: ProxyHandle;
let llama: FakeModelServer;
let qwen: FakeModelServer;
let plain: TestReplica;
let agent: Agent;
let client: OpenAI;

/** Every host name resolves to 127.0.0.1, so the client sends the entrypoint's Host as a browser would. */
function loopbackAgent(): Agent {
  return new Agent({
    connect: {
      lookup: ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
        if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
        else callback(null, "127.0.0.1", 4);
      }) as never,
    },
  });
}

beforeAll(async () => {
  llama = await startFakeModelServer("llama-server");
  qwen = await startFakeModelServer("qwen-server", "/api/v1");
  plain = await startReplica("plain");
  proxy = await startProxy({
    httpPort: 0,
    processes: 0,
    initialConfig: configDocument(1, [
      { name: "llama", replicas: [llama.url], model: { name: "meta/llama-3", format: "openai", prefix: "/v1" } },
      {
        name: "qwen",
        project: "research",
        client_max_body_size: 4096,
        replicas: [qwen.url],
        model: { name: "qwen-2", format: "openai", prefix: "/api/v1/" },
      },
      { name: "plain", replicas: [plain.url] },
    ]),
  });
  agent = loopbackAgent();
  client = new OpenAI({
    apiKey: "not-checked",
    baseURL: `http://${ENTRYPOINT}:${proxy.port}/v1`,
    maxRetries: 0,
    timeout: 5_000,
    fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as never,
  });
});

afterAll(async () => {
  await proxy?.close();
  await agent?.close();
  await llama?.close();
  await qwen?.close();
  await plain?.close();
});

async function windowRequests(service: string): Promise<number> {
  const stats = await proxy.stats();
  return stats.find((s) => s.service === service)?.windows["300"].requests ?? -1;
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([promise.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

describe("OpenAI-compatible entrypoint", () => {
  it("lists every service with a model", async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models).toEqual([
      { id: "meta/llama-3", object: "model", created: 0, owned_by: "main" },
      { id: "qwen-2", object: "model", created: 0, owned_by: "research" },
    ]);
    const one = await client.models.retrieve("qwen-2");
    expect(one.owned_by).toBe("research");
  });

  it("routes chat completions and completions by model to the right service, same body bytes", async () => {
    const before = { llama: await windowRequests("llama"), qwen: await windowRequests("qwen") };
    const chat = await client.chat.completions.create({
      model: "meta/llama-3",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(chat.system_fingerprint).toBe("llama-server");
    expect(chat.choices[0]!.message.content).toBe(TOKENS.join(""));

    const completion = await client.completions.create({ model: "qwen-2", prompt: "say" });
    expect(completion.system_fingerprint).toBe("qwen-server");
    expect(completion.choices[0]!.text).toBe(" from qwen-server");

    const qwenChat = await client.chat.completions.create({
      model: "qwen-2",
      messages: [{ role: "user", content: "hello" }],
    });
    expect(qwenChat.system_fingerprint).toBe("qwen-server");

    const seenByLlama = llama.requests.at(-1)!;
    expect(seenByLlama.path).toBe("/v1/chat/completions");
    expect(seenByLlama.host).toBe(`${ENTRYPOINT}:${proxy.port}`);
    expect(JSON.parse(seenByLlama.body)).toEqual({
      model: "meta/llama-3",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(qwen.requests.map((r) => r.path).slice(-2)).toEqual(["/api/v1/completions", "/api/v1/chat/completions"]);

    const body = '{ "model" : "meta/llama-3", "prompt": "x",  "max_tokens": 3 }';
    const raw = await send(proxy.port, {
      host: ENTRYPOINT,
      method: "POST",
      path: "/v1/completions?trace=1",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(raw.status).toBe(200);
    expect(llama.requests.at(-1)).toMatchObject({ path: "/v1/completions?trace=1", body });
    // The replica's own CORS header is replaced.
    expect(raw.headers["access-control-allow-origin"]).toBe("*");
    expect(raw.rawHeaders.filter((h) => h.toLowerCase() === "access-control-allow-origin")).toHaveLength(1);

    expect(await windowRequests("llama")).toBe(before.llama + 2);
    expect(await windowRequests("qwen")).toBe(before.qwen + 2);
  });

  it("streams SSE chunks one by one", async () => {
    llama.gated = true;
    try {
      const stream = await client.chat.completions.create({
        model: "meta/llama-3",
        messages: [{ role: "user", content: "stream please" }],
        stream: true,
      });
      const it = stream[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value?.choices[0]?.delta.role).toBe("assistant");
      for (const token of TOKENS) {
        const next = it.next();
        // Nothing comes while the replica holds the next token back…
        expect(await settlesWithin(next, 150)).toBe(false);
        llama.release();
        // …and the token arrives as soon as it is sent, before the stream ends.
        const { value, done } = await next;
        expect(done).toBe(false);
        expect(value?.choices[0]?.delta.content).toBe(token);
        expect(value?.system_fingerprint).toBe("llama-server");
      }
      llama.release();
      const last = await it.next();
      expect(last.value?.choices[0]?.finish_reason).toBe("stop");
      expect((await it.next()).done).toBe(true);
    } finally {
      llama.gated = false;
    }
  });

  it("answers an unknown model with OpenAI's 404 body", async () => {
    const error = await client.chat.completions
      .create({ model: "gpt-404", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: "model_not_found", param: "model" });

    const raw = await send(proxy.port, {
      host: ENTRYPOINT,
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "x", messages: [] }),
    });
    expect(raw.status).toBe(404);
    expect(raw.headers["access-control-allow-origin"]).toBe("*");
    expect(JSON.parse(raw.body)).toEqual({
      error: {
        message: "The model 'x' does not exist",
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
      },
    });
    const missing = await client.models.retrieve("x").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("answers bad JSON, a missing model, other paths and methods with OpenAI-style errors", async () => {
    const post = (path: string, body: string) =>
      send(proxy.port, {
        host: ENTRYPOINT,
        method: "POST",
        path,
        headers: { "content-type": "application/json" },
        body,
      });
    const bad = await post("/v1/chat/completions", "{not json");
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatchObject({ type: "invalid_request_error", code: null });
    const empty = await post("/v1/completions", "");
    expect(empty.status).toBe(400);
    const noModel = await post("/v1/completions", '{"prompt": "x"}');
    expect(noModel.status).toBe(400);
    expect(JSON.parse(noModel.body).error).toMatchObject({ param: "model" });
    const other = await post("/v1/embeddings", '{"model": "meta/llama-3"}');
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body).error).toMatchObject({ type: "invalid_request_error" });
    const root = await send(proxy.port, { host: ENTRYPOINT, path: "/" });
    expect(root.status).toBe(404);
    expect(JSON.parse(root.body).error.message).toContain("Invalid URL");
    const get = await send(proxy.port, { host: ENTRYPOINT, path: "/v1/chat/completions" });
    expect(get.status).toBe(405);
  });

  it("forwards a chunked request body with its length", async () => {
    const body = JSON.stringify({ model: "meta/llama-3", prompt: "chunked" });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: proxy.port,
        method: "POST",
        path: "/v1/completions",
        setHost: false,
        agent: false,
        headers: { host: ENTRYPOINT, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 20);
    });
    expect(status).toBe(200);
    expect(llama.requests.at(-1)!.body).toBe(body);
  });

  it("refuses bodies over 1 MiB before the model is known and over the service's limit after", async () => {
    const huge = JSON.stringify({ model: "nobody", prompt: "x".repeat(1024 * 1024) });
    const unknown = await send(proxy.port, { host: ENTRYPOINT, method: "POST", path: "/v1/completions", body: huge });
    expect(unknown.status).toBe(413);
    const overQwen = JSON.stringify({ model: "qwen-2", prompt: "x".repeat(5000) });
    const over = await send(proxy.port, { host: ENTRYPOINT, method: "POST", path: "/v1/completions", body: overQwen });
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body).error.message).toContain("4096");
    // llama has the default 64 MiB limit: 2 MiB passes once its model is read off the body.
    const big = JSON.stringify({ model: "meta/llama-3", prompt: "x".repeat(2 * 1024 * 1024) });
    const ok = await send(proxy.port, { host: ENTRYPOINT, method: "POST", path: "/v1/completions", body: big });
    expect(ok.status).toBe(200);
    expect(llama.requests.at(-1)!.body.length).toBe(big.length);
  });

  it("answers CORS preflights on the entrypoint and on model services, not on other services", async () => {
    for (const host of [ENTRYPOINT, `llama.${DOMAIN}`]) {
      const preflight = await send(proxy.port, {
        host,
        method: "OPTIONS",
        path: "/v1/chat/completions",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers).toMatchObject({
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "authorization, content-type, x-stainless-os",
        "access-control-max-age": "86400",
      });
    }
    const defaults = await send(proxy.port, {
      host: ENTRYPOINT,
      method: "OPTIONS",
      path: "/v1/models",
      headers: { origin: "https://app.example", "access-control-request-method": "GET" },
    });
    expect(defaults.headers["access-control-allow-headers"]).toBe("Authorization, Content-Type");

    const models = await send(proxy.port, { host: ENTRYPOINT, path: "/v1/models" });
    expect(models.headers["access-control-allow-origin"]).toBe("*");

    // Direct traffic to a model service gets ACAO too; other services keep what their replica sends.
    const direct = await send(proxy.port, {
      host: `llama.${DOMAIN}`,
      method: "POST",
      path: "/v1/chat/completions",
      body: JSON.stringify({ model: "meta/llama-3", messages: [] }),
    });
    expect(direct.status).toBe(200);
    expect(direct.headers["access-control-allow-origin"]).toBe("*");
    const plainBefore = plain.seen.length;
    const other = await send(proxy.port, {
      host: `plain.${DOMAIN}`,
      method: "OPTIONS",
      path: "/",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(plain.seen.length).toBe(plainBefore + 1);
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
  });
});

describe("entrypoint failures behave as direct traffic", () => {
  it("answers 503 for a model without replicas and 502 when its replica is down, counting only what reached one", async () => {
    const dead = await startReplica("dead");
    const deadUrl = dead.url;
    await dead.close();
    const p = await startProxy({
      httpPort: 0,
      processes: 0,
      initialConfig: configDocument(1, [
        { name: "empty", replicas: [], model: { name: "empty-model", format: "openai", prefix: "/v1" } },
        { name: "down", replicas: [deadUrl], model: { name: "down-model", format: "openai", prefix: "/v1" } },
      ]),
    });
    try {
      const post = (model: string) =>
        send(p.port, {
          host: ENTRYPOINT,
          method: "POST",
          path: "/v1/chat/completions",
          body: JSON.stringify({ model, messages: [] }),
        });
      const empty = await post("empty-model");
      expect(empty.status).toBe(503);
      expect(empty.headers["retry-after"]).toBe("5");
      expect(empty.headers["access-control-allow-origin"]).toBe("*");
      const down = await post("down-model");
      expect(down.status).toBe(502);
      expect(down.headers["access-control-allow-origin"]).toBe("*");
      const stats = await p.stats();
      expect(stats.map((s) => [s.service, s.windows["300"].requests])).toEqual([
        ["empty", 0],
        ["down", 0],
      ]);
    } finally {
      await p.close();
    }
  });
});
