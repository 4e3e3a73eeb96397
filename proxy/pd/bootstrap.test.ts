import { describe, expect, it } from "vitest";
import { pdBatchSize, randomRoom, withBootstrap } from "./bootstrap.ts";

const inject = (raw: string, path = "/generate", port: number | null = 8998) => {
  let room = 0;
  const out = withBootstrap(Buffer.from(raw), JSON.parse(raw), path, { host: "10.0.0.5", port }, () =>
    String(9223372036854775800n + BigInt(room++)),
  );
  return out.toString();
};

describe("bootstrap injection", () => {
  it("appends the three fields to a single request, keeping the client's bytes", () => {
    expect(inject('{"text":"hi", "seed": 12345678901234567890}')).toBe(
      '{"text":"hi", "seed": 12345678901234567890,"bootstrap_host":"10.0.0.5","bootstrap_port":8998,"bootstrap_room":9223372036854775800}',
    );
    expect(inject("{}", "/generate", null)).toBe(
      '{"bootstrap_host":"10.0.0.5","bootstrap_port":null,"bootstrap_room":9223372036854775800}',
    );
  });

  it("puts one entry per item, each with its own room, for SGLang's batch forms", () => {
    const out = JSON.parse(inject('{"prompt":["a","b"]}', "/v1/completions").replace(/(\d{16,})/g, '"$1"'));
    expect(out).toEqual({
      prompt: ["a", "b"],
      bootstrap_host: ["10.0.0.5", "10.0.0.5"],
      bootstrap_port: [8998, 8998],
      bootstrap_room: ["9223372036854775800", "9223372036854775801"],
    });
    expect(pdBatchSize("/generate", { text: ["a", "b", "c"] })).toBe(3);
    expect(pdBatchSize("/generate", { input_ids: [[1], [2]] })).toBe(2);
    expect(pdBatchSize("/generate", { input_ids: [1, 2] })).toBeNull();
    expect(pdBatchSize("/v1/chat/completions", { n: 2 })).toBe(2);
    expect(pdBatchSize("/v1/chat/completions", { n: 1 })).toBeNull();
    expect(pdBatchSize("/v1/completions", { prompt: [1, 2, 3] })).toBeNull();
  });

  it("replaces fields the client sent", () => {
    expect(inject('{"text":"hi","bootstrap_room":1}')).toBe(
      '{"text":"hi","bootstrap_host":"10.0.0.5","bootstrap_port":8998,"bootstrap_room":9223372036854775800}',
    );
  });

  it("draws rooms in [0, 2^63 - 1]", () => {
    for (let i = 0; i < 200; i++) {
      const room = BigInt(randomRoom());
      expect(room >= 0n && room < 2n ** 63n).toBe(true);
    }
  });
});
