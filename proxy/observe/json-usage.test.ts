import { describe, expect, it } from "vitest";
import { JsonUsage } from "./json-usage.ts";

const openai = JSON.stringify({
  id: "cmpl-1",
  object: "chat.completion",
  choices: [{ index: 0, message: { role: "assistant", content: 'quoted "prompt_tokens": 999 stays text' } }],
  usage: { prompt_tokens: 17, total_tokens: 59, completion_tokens: 42, prompt_tokens_details: { cached_tokens: 5 } },
  prompt_logprobs: null,
});

function read(text: string, step: number): JsonUsage {
  const u = new JsonUsage();
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += step) u.feed(bytes.subarray(i, i + step));
  u.end();
  return u;
}

describe("JSON usage", () => {
  it("reads usage across any chunk boundaries, and never a key quoted inside a string", () => {
    for (const step of [1, 2, 5, 13, 63, 64, 65, 100, 100_000]) {
      const u = read(openai, step);
      expect([u.inputTokens, u.outputTokens], `step ${step}`).toEqual([17, 42]);
    }
  });

  it("reads Python's spacing and SGLang's native meta_info", () => {
    const sglang =
      '{"text": "Paris.", "meta_info": {"id": "a", "prompt_tokens": 6, "completion_tokens": 3, "cached_tokens": 0}}';
    const u = read(sglang, 7);
    expect([u.inputTokens, u.outputTokens]).toEqual([6, 3]);
  });

  it("adds up a batch of answers (SGLang's /generate with a list of prompts)", () => {
    const batch = JSON.stringify([
      { text: "a", meta_info: { prompt_tokens: 2, completion_tokens: 5 } },
      { text: "b", meta_info: { prompt_tokens: 3, completion_tokens: 7 } },
    ]);
    const u = read(batch, 11);
    expect([u.inputTokens, u.outputTokens]).toEqual([5, 12]);
  });

  it("has nothing for a body without usage, or with a key that has no number", () => {
    const none = read(JSON.stringify({ data: [{ embedding: [0.1, 0.2] }] }), 3);
    expect([none.inputTokens, none.outputTokens]).toEqual([null, null]);
    const odd = read('{"usage": {"prompt_tokens": "many", "completion_tokens": null}}', 4);
    expect([odd.inputTokens, odd.outputTokens]).toEqual([null, null]);
  });

  it("keeps at most a few dozen bytes whatever the body's size", () => {
    const u = new JsonUsage();
    const filler = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 8; i++) u.feed(filler);
    u.feed(Buffer.from('","usage":{"prompt_tokens":1,"completion_tokens":2}}'));
    u.end();
    expect([u.inputTokens, u.outputTokens]).toEqual([1, 2]);
  });
});
