import { describe, expect, it } from "vitest";
import { escapeLine, escapeLines, escapeTerminal, toJsonText } from "./escape.ts";

// biome-ignore lint/suspicious/noControlCharactersInRegex: asserting there are none.
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

describe("escapeTerminal", () => {
  it("shows ESC, NUL, newlines, DEL and C1 as visible escapes", () => {
    expect(escapeTerminal("eu\x1b[31mred\0\nx\r\t\x7f\x9b2J")).toBe("eu\\x1b[31mred\\0\\nx\\r\\t\\x7f\\x9b2J");
    expect(escapeTerminal("plain ✓ région")).toBe("plain ✓ région");
  });

  it("lines keep only the CLI's own bold and dim, and their separators", () => {
    expect(escapeLine("\x1b[1mNAME\x1b[22m \x1b[31mred\x1b[2J\n")).toBe("\x1b[1mNAME\x1b[22m \\x1b[31mred\\x1b[2J\\n");
    expect(escapeLines("a\x1b]0;pwned\x07\nb")).toBe("a\\x1b]0;pwned\\x07\nb");
  });

  it("keeps --json valid JSON of the same value with no raw control character", () => {
    const value = { region: "eu\x1b[31m\0\n\x7f\x9b" };
    const text = toJsonText(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text.replace(/\n/g, "")).not.toMatch(RAW_CONTROL);
  });
});
