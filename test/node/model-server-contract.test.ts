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
