import { describe, expect, it } from "vitest";
import { SseMeter } from "./sse-meter.ts";

const chat = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
const usageChunk = (prompt: number, completion: number) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } })}\n\n`;
const DONE = "data: [DONE]\n\n";

/** A vLLM-like chat stream: role chunk, `tokens` content chunks, finish chunk, optional usage, [DONE]. */
function chatStream(tokens: string[], usage: [number, number] | null = null): string {
  let s = chat({ role: "assistant", content: "" });
  for (const t of tokens) s += chat({ content: t });
  s += chat({}, { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
  if (usage) s += usageChunk(usage[0], usage[1]);
  return s + DONE;
}

/** Feeds `text` split at every `step` bytes, the n-th piece arriving at time n (ms). */
function feedSplit(meter: SseMeter, text: string, step: number): Buffer {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0, n = 0; i < bytes.length; i += step, n++) out.push(meter.feed(bytes.subarray(i, i + step), n));
  const rest = meter.end();
  if (rest) out.push(rest);
  return Buffer.concat(out);
}

describe("SSE meter", () => {
  it("counts content events, times the first and the gaps, and ignores role and finish chunks", () => {
    const m = new SseMeter();
    const events = [chat({ role: "assistant", content: "" }), chat({ content: "Hel" }), chat({ content: "lo" })];
    m.feed(Buffer.from(events[0]!), 100);
    expect(m.firstContentAt).toBe(-1);
    m.feed(Buffer.from(events[1]!), 250);
    m.feed(Buffer.from(events[2]! + chat({}, { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })), 280);
    m.feed(Buffer.from(DONE), 290);
    expect(m.firstContentAt).toBe(250);
    expect(m.contentEvents).toBe(2);
    expect(m.gaps).toEqual([0.03]);
    expect(m.done).toBe(true);
    expect(m.outputTokens).toBeNull();
    expect(m.estimated).toBe(true);
  });

  it("reads the same whatever the chunk boundaries, LF or CRLF", () => {
    const text = chatStream(["a", "b", "c", "d"], [7, 4]);
    for (const t of [text, text.replace(/\n/g, "\r\n")]) {
      for (const step of [1, 2, 3, 7, 64, 1000]) {
        const m = new SseMeter();
        expect(feedSplit(m, t, step).toString()).toBe(t);
        expect([m.contentEvents, m.inputTokens, m.outputTokens, m.done, m.estimated], `step ${step}`).toEqual([
          4,
          7,
          4,
          true,
          false,
        ]);
      }
    }
  });

  it("takes usage from the final chunk, exact; without it the estimate is one token per content event", () => {
    const exact = new SseMeter();
    exact.feed(Buffer.from(chatStream(["x", "y"], [12, 30])), 0);
    expect([exact.inputTokens, exact.outputTokens, exact.estimated]).toEqual([12, 30, false]);
    const estimate = new SseMeter();
    estimate.feed(Buffer.from(chatStream(["x", "y", "z"])), 0);
    expect([estimate.inputTokens, estimate.outputTokens, estimate.contentEvents, estimate.estimated]).toEqual([
      null,
      null,
      3,
      true,
    ]);
  });

  it("counts reasoning, tool calls and completions text as content; empty and null values are not", () => {
    const kinds = [
      chat({ reasoning_content: "thinking" }),
      chat({ reasoning: "thinking" }),
      chat({ content: null, tool_calls: [{ index: 0, function: { arguments: "{" } }] }),
      `data: ${JSON.stringify({ object: "text_completion", choices: [{ index: 0, text: " hi" }] })}\n\n`,
      // Python's json.dumps puts spaces around the colon.
      'data: {"choices": [{"index": 0, "delta": {"content": "spaced"}}]}\n\n',
    ];
    for (const k of kinds) {
      const m = new SseMeter();
      m.feed(Buffer.from(k), 1);
      expect(m.contentEvents, k).toBe(1);
    }
    const none = [
      chat({ content: "" }),
      chat({ content: null }),
      chat({ tool_calls: [] }),
      `data: ${JSON.stringify({ object: "text_completion", choices: [{ index: 0, text: "" }] })}\n\n`,
      // The logprobs' "content" is a list, and a quoted "content" inside a string is escaped.
      chat({}, { choices: [{ index: 0, delta: {}, logprobs: { content: [{ token: "x" }] } }] }),
      'data: {"choices":[{"delta":{"content":""},"note":"say \\"content\\":\\"x\\""}]}\n\n',
      ": a comment\n\n",
      "event: ping\ndata: {}\n\n",
    ];
    for (const k of none) {
      const m = new SseMeter();
      m.feed(Buffer.from(k), 1);
      expect(m.contentEvents, k).toBe(0);
    }
  });

  it("with continuous usage (usage on every chunk) takes the totals from the final usage-only chunk", () => {
    const m = new SseMeter();
    m.feed(Buffer.from(chat({ content: "a" }, { usage: { prompt_tokens: 3, completion_tokens: 1 } })), 1);
    m.feed(Buffer.from(chat({ content: "b" }, { usage: { prompt_tokens: 3, completion_tokens: 2 } })), 2);
    // Running usage on content chunks is not read (one search per content chunk is the budget)…
    expect([m.contentEvents, m.inputTokens, m.outputTokens, m.estimated]).toEqual([2, null, null, true]);
    // …the final chunk, which such streams also send, is.
    m.feed(Buffer.from(chat({}, { choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } }) + DONE), 3);
    expect([m.contentEvents, m.inputTokens, m.outputTokens, m.estimated]).toEqual([2, 3, 2, false]);
  });

  it("searches a chunk of many events once per key, whatever their order", () => {
    const m = new SseMeter();
    let text = "";
    for (let i = 0; i < 50; i++) text += i % 3 === 0 ? chat({ role: "assistant" }) : chat({ content: `t${i}` });
    m.feed(Buffer.from(text + chat({ content: "" }) + chat({ content: "last" })), 5);
    expect(m.contentEvents).toBe(34);
  });

  it("reads SGLang's native /generate stream: cumulative text, exact counts in meta_info", () => {
    const event = (text: string, completion: number) =>
      `data: ${JSON.stringify({ text, output_ids: [1, 2], meta_info: { id: "x", prompt_tokens: 9, completion_tokens: completion, finish_reason: null } })}\n\n`;
    const m = new SseMeter();
    m.feed(Buffer.from(event("The", 1)), 10);
    m.feed(Buffer.from(event("The sky", 2)), 30);
    // Same count again (a keep-alive or a finish event): not a new token.
    m.feed(Buffer.from(event("The sky", 2)), 35);
    m.feed(Buffer.from(event("The sky is", 3) + DONE), 70);
    expect([m.contentEvents, m.firstContentAt, m.gaps, m.inputTokens, m.outputTokens, m.estimated]).toEqual([
      3,
      10,
      [0.02, 0.04],
      9,
      3,
      false,
    ]);
    expect(m.done).toBe(true);
  });

  it("withholds only the usage-only event, across any chunk boundaries", () => {
    const text = chatStream(["a", "b"], [5, 2]);
    const expected = chatStream(["a", "b"]);
    for (const step of [1, 5, 13, 100, 10_000]) {
      const m = new SseMeter(true);
      expect(feedSplit(m, text, step).toString(), `step ${step}`).toBe(expected);
      expect([m.inputTokens, m.outputTokens]).toEqual([5, 2]);
    }
    // A stream without one passes unchanged; an unfinished last event is relayed at the end.
    const m = new SseMeter(true);
    expect(feedSplit(m, `${chatStream(["a"])}data: {"partial"`, 4).toString()).toBe(
      `${chatStream(["a"])}data: {"partial"`,
    );
  });

  it("relays a usage chunk the client asked for (not withholding)", () => {
    const text = chatStream(["a"], [1, 1]);
    const m = new SseMeter();
    expect(feedSplit(m, text, 9).toString()).toBe(text);
  });

  it("skips lines past its bound instead of holding them", () => {
    const m = new SseMeter();
    const big = `data: {"x":"${"y".repeat(300 * 1024)}"}\n\n`;
    for (let i = 0; i < big.length; i += 4096) m.feed(Buffer.from(big.slice(i, i + 4096)), 1);
    m.feed(Buffer.from(chat({ content: "after" }) + DONE), 2);
    expect([m.contentEvents, m.done]).toEqual([1, true]);
  });

  it("relays an event too long to hold as it comes, even while withholding", () => {
    const m = new SseMeter(true);
    const big = `data: {"x":"${"y".repeat(1100 * 1024)}"}\n\n`;
    const out: Buffer[] = [];
    for (let i = 0; i < big.length; i += 65_536) out.push(m.feed(Buffer.from(big.slice(i, i + 65_536)), 1));
    expect(Buffer.concat(out).toString()).toBe(big);
  });
});
