import OpenAI, { BadRequestError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeModelServer, startFakeModelServer, TOKENS } from "../fakes/model-server.ts";

// The official `openai` client against the fake model server: its SSE streams, usage chunk and
// errors parse as the real API's do, so what the metering tests feed the proxy is the real format.
let server: FakeModelServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startFakeModelServer("contract", { promptTokens: 7, itlMs: 1 });
  client = new OpenAI({ apiKey: "unused", baseURL: `${server.url}/v1`, maxRetries: 0, timeout: 5_000 });
});

afterAll(async () => {
  await server?.close();
});

describe("fake model server, read by the openai client", () => {
  it("streams chat chunks and, when asked, a final usage chunk with no choices", async () => {
    const chunks = [];
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) chunks.push(chunk);
    const content = chunks.flatMap((c) => c.choices.map((choice) => choice.delta.content ?? "")).join("");
    expect(content).toBe(TOKENS.join(""));
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 7, completion_tokens: TOKENS.length, total_tokens: 7 + TOKENS.length });
    expect(chunks.slice(0, -1).every((c) => c.usage == null)).toBe(true);
  });

  it("sends no usage chunk unless asked, and refuses stream_options without stream (as vLLM)", async () => {
    const chunks = [];
    const stream = await client.chat.completions.create({ model: "m", messages: [], stream: true });
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.choices.length === 1 && c.usage == null)).toBe(true);
    const refused = await client.chat.completions
      .create({ model: "m", messages: [], stream_options: { include_usage: true } })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as BadRequestError).message).toContain("Stream options can only be defined when `stream=True`");
  });

  it("streams completions and answers whole requests with usage", async () => {
    let text = "";
    let usage = null;
    const stream = await client.completions.create({
      model: "m",
      prompt: "x",
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      text += chunk.choices.map((c) => c.text).join("");
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(TOKENS.join(""));
    expect(usage).toMatchObject({ prompt_tokens: 7, completion_tokens: TOKENS.length });
    const whole = await client.chat.completions.create({ model: "m", messages: [] });
    expect(whole.choices[0]!.message.content).toBe(TOKENS.join(""));
    expect(whole.usage?.completion_tokens).toBe(TOKENS.length);
  });
});

describe("fake model server with load", () => {
  it("queues beyond maxRunning, prefills what its cache lacks, and reports both in /metrics", async () => {
    const engine = await startFakeModelServer("load", {
      metrics: { engine: "vllm", maxRunning: 1 },
      load: { prefillMsPerChar: 0.5 },
    });
    const c = new OpenAI({ apiKey: "unused", baseURL: `${engine.url}/v1`, maxRetries: 0, timeout: 5_000 });
    const ttft = async (prompt: string) => {
      const sent = performance.now();
      const stream = await c.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: prompt }],
        stream: true,
      });
      let first = 0;
      for await (const chunk of stream) if (first === 0 && chunk.choices[0]?.delta.content) first = performance.now();
      return first - sent;
    };
    try {
      const long = "x".repeat(400);
      const load = engine.engine!;
      // 400 uncached characters: 200 ms of prefill (a lower bound: a loaded machine only adds to it).
      expect(await ttft(long)).toBeGreaterThanOrEqual(190);
      expect(load.cachedChars).toBe(0);
      // The same prompt again comes from the cache, and so does the start of a longer one: only what
      // the cache lacks is prefilled. Read from the engine's accounting, not from a TTFT upper bound
      // (which a stalled event loop breaks).
      await ttft(long);
      const hit = load.cachedChars;
      expect(hit).toBeGreaterThanOrEqual(400);
      await ttft(`${long} and more`);
      expect(load.cachedChars - hit).toBeGreaterThanOrEqual(400);
      expect(load.cachedChars - hit).toBeLessThan(`${long} and more`.length);
      // One slot: the second of two new prompts waits for the first.
      const [a, b] = await Promise.all([ttft("y".repeat(200)), ttft("z".repeat(200))]);
      expect(Math.max(a, b)).toBeGreaterThanOrEqual(190);
      expect(engine.engine!.peakWaiting).toBe(1);
      const metrics = await (await fetch(`${engine.url}/metrics`)).text();
      expect(metrics).toMatch(/^vllm:num_requests_waiting\{[^}]*\} 0\.0$/m);
      expect(Number(/^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)$/m.exec(metrics)![1])).toBeGreaterThan(150);
    } finally {
      await engine.close();
    }
  });
});
