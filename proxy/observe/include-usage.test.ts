import { describe, expect, it } from "vitest";
import { includeUsage, usagePath } from "./include-usage.ts";

const body = (o: unknown) => Buffer.from(JSON.stringify(o));

describe("usage: include", () => {
  it("asks a streamed request for its usage, keeping every byte the client sent", () => {
    const sent = Buffer.from(
      ' {"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"seed":12345678901234567890}',
    );
    const out = includeUsage(sent)!;
    expect(out.toString()).toBe(
      ' {"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"seed":12345678901234567890}',
    );
    expect(JSON.parse(out.toString()).stream_options).toEqual({ include_usage: true });
  });

  it("leaves alone what is not a stream, what already has stream_options, and what is not JSON", () => {
    expect(includeUsage(body({ model: "m", stream: false }))).toBeNull();
    expect(includeUsage(body({ model: "m" }))).toBeNull();
    expect(includeUsage(body({ model: "m", stream: "true" }))).toBeNull();
    expect(includeUsage(body({ model: "m", stream: true, stream_options: { include_usage: false } }))).toBeNull();
    expect(includeUsage(body({ model: "m", stream: true, stream_options: {} }))).toBeNull();
    expect(includeUsage(body({ model: "m", stream: true, stream_options: null }))).toBeNull();
    expect(includeUsage(Buffer.from('{"stream": true'))).toBeNull();
    expect(includeUsage(body([{ stream: true }]))).toBeNull();
  });

  it("applies to POSTs of OpenAI's completions endpoints", () => {
    expect(usagePath("POST", "/v1/chat/completions")).toBe(true);
    expect(usagePath("POST", "/api/v1/completions?x=1")).toBe(true);
    expect(usagePath("GET", "/v1/chat/completions")).toBe(false);
    expect(usagePath("POST", "/v1/embeddings")).toBe(false);
    expect(usagePath("POST", "/generate")).toBe(false);
  });
});
