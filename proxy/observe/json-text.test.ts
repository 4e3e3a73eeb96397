import { describe, expect, it } from "vitest";
import { jsonString } from "./json-text.ts";

describe("jsonString", () => {
  it("is what JSON.stringify makes of any string", () => {
    const samples = [
      "",
      "plain/path",
      'quote"d',
      "back\\slash",
      "tab\there",
      "nl\n",
      "\u0000\u001f",
      "café ☕",
      "\ud83d\ude00",
      "\ud800 lone",
      "\u007f",
    ];
    for (const s of samples) expect(jsonString(s)).toBe(JSON.stringify(s));
    // Sliced and concatenated strings too.
    const sliced = 'GET /a"b HTTP/1.1'.slice(4, 9);
    expect(jsonString(sliced)).toBe(JSON.stringify(sliced));
  });
});
