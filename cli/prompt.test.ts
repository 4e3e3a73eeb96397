import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { capture } from "../test/support/cli-io.ts";
import { CliError } from "./errors.ts";
import { confirm, LineReader } from "./prompt.ts";

async function readAll(reader: LineReader): Promise<(string | null)[]> {
  const lines: (string | null)[] = [];
  for (;;) {
    const line = await reader.next();
    lines.push(line);
    if (line === null) return lines;
  }
}

describe("LineReader", () => {
  it("keeps lines that arrived together for the next questions", async () => {
    expect(await readAll(new LineReader(Readable.from(["maybe\nyes\n"])))).toEqual(["maybe", "yes", null]);
  });

  it("joins lines split across chunks, multi-byte characters included", async () => {
    const euro = Buffer.from("€");
    const chunks = [Buffer.from("y"), Buffer.from("es\r\nn"), euro.subarray(0, 1), euro.subarray(1), Buffer.from("\n")];
    expect(await readAll(new LineReader(Readable.from(chunks)))).toEqual(["yes", "n€", null]);
  });

  it("returns a last line without a newline, then end of input", async () => {
    expect(await readAll(new LineReader(Readable.from(["y"])))).toEqual(["y", null]);
    expect(await readAll(new LineReader(Readable.from([])))).toEqual([null]);
  });

  it("waits for input typed later and stops reading when closed", async () => {
    const stdin = new PassThrough();
    const reader = new LineReader(stdin);
    const answer = reader.next();
    stdin.write("n");
    setImmediate(() => stdin.write("o\n"));
    expect(await answer).toBe("no");
    reader.close();
    expect(stdin.listenerCount("data")).toBe(0);
    expect(stdin.isPaused()).toBe(true);
  });
});

describe("confirm", () => {
  const ask = async (input: string) => {
    const stdout = capture();
    const stdin = Readable.from([input]);
    const answer = await confirm("Delete the gateway edge?", new LineReader(stdin), { stdin, stdout });
    return { answer, output: stdout.text };
  };

  it.each([
    ["y\n", true],
    ["YES\n", true],
    [" n \n", false],
    ["no\n", false],
  ])("%j → %s", async (input, expected) => {
    expect((await ask(input)).answer).toBe(expected);
  });

  it("asks again until it gets y or n", async () => {
    expect(await ask("\nok\nn\n")).toEqual({
      answer: false,
      output:
        "Delete the gateway edge? [y/n]: \nPlease enter y or n\n".repeat(2) + "Delete the gateway edge? [y/n]: \n",
    });
  });

  it("does not take silence for an answer", async () => {
    await expect(ask("")).rejects.toThrow(CliError);
    await expect(ask("whatever\n")).rejects.toThrow(
      'no answer to "Delete the gateway edge?" on stdin; pass -y to proceed without confirmation',
    );
  });

  it("lets a terminal echo the newline itself", async () => {
    const stdout = capture();
    const stdin = Object.assign(Readable.from(["y\n"]), { isTTY: true });
    await confirm("Create the gateway?", new LineReader(stdin), { stdin, stdout });
    expect(stdout.text).toBe("Create the gateway? [y/n]: ");
  });
});
