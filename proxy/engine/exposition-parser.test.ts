import { describe, expect, it } from "vitest";
import { ExpositionParser, ExpositionSyntaxError, parseExposition, parseValue } from "./exposition-parser.ts";

interface Seen {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function collect(text: string | string[], wants: (name: string) => boolean = () => true) {
  const samples: Seen[] = [];
  const families: string[] = [];
  const asked: string[] = [];
  const parser = new ExpositionParser({
    wants: (name) => {
      asked.push(name);
      return wants(name);
    },
    sample: (name, labels, value) => samples.push({ name, labels: { ...labels }, value }),
    family: (name) => families.push(name),
  });
  for (const chunk of Array.isArray(text) ? text : [text]) parser.push(chunk);
  parser.end();
  return { samples, families, asked };
}

describe("Prometheus text format 0.0.4", () => {
  it("reads samples with labels, escapes, blanks, timestamps and a trailing comma", () => {
    const { samples } = collect(
      [
        'a_metric{path="/x\\"y\\\\z\\nw",code="200"} 12.5 1712345678901',
        "b_metric 3",
        '  c:metric{ a = "1" , b="}{,=" , }\t-4e-2',
        "d_metric{} +Inf",
        "e_metric -Inf -1",
        "f_metric NaN",
        "",
      ].join("\n"),
    );
    expect(samples).toEqual([
      { name: "a_metric", labels: { path: '/x"y\\z\nw', code: "200" }, value: 12.5 },
      { name: "b_metric", labels: {}, value: 3 },
      { name: "c:metric", labels: { a: "1", b: "}{,=" }, value: -0.04 },
      { name: "d_metric", labels: {}, value: Number.POSITIVE_INFINITY },
      { name: "e_metric", labels: {}, value: Number.NEGATIVE_INFINITY },
      { name: "f_metric", labels: {}, value: Number.NaN },
    ]);
  });

  it("names families from HELP and TYPE and skips other comments", () => {
    const { samples, families } = collect(
      "# HELP x_total Things, with a \\\\ escaped help.\n# TYPE x_total counter\n# just a comment\n#\nx_total 1\n",
    );
    expect(families).toEqual(["x_total", "x_total"]);
    expect(samples).toHaveLength(1);
  });

  it("does not read the labels of lines it does not want (even malformed ones)", () => {
    const { samples, asked } = collect('skip_me{broken="\n keep{a="b"} 1\n', (n) => n === "keep");
    expect(asked).toEqual(["skip_me", "keep"]);
    expect(samples).toEqual([{ name: "keep", labels: { a: "b" }, value: 1 }]);
  });

  it("gives the same samples whatever the chunking, a last line without a newline included", () => {
    const text = 'm{a="x\\"y"} 1\r\nn 2 17\nlast{z="1"} 3';
    const whole = collect(text).samples;
    for (let size = 1; size < 8; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(collect(chunks).samples).toEqual(whole);
    }
    expect(whole.map((s) => s.value)).toEqual([1, 2, 3]);
  });

  it.each([
    ["1bad 1", "expected a metric name"],
    ["m", "expected a value after m"],
    ['m{a="1} 2', "unterminated value"],
    ['m{a="\\t"} 2', "unknown escape"],
    ["m{a=1} 2", "expected a quoted value"],
    ['m{a="1" b="2"} 2', "expected , or }"],
    ["m one", '"one" is not a value'],
    ["m 0x10", '"0x10" is not a value'],
    ["m 1 soon", "expected a timestamp"],
    ["m 1 2 3", "unexpected text after the timestamp"],
  ])("refuses %j naming the line", (line, message) => {
    const parse = () => parseExposition(`ok 1\n${line}\n`, { wants: () => true, sample: () => {} });
    expect(parse).toThrow(ExpositionSyntaxError);
    expect(parse).toThrow(/^\/metrics line 2: /);
    expect(parse).toThrow(message);
  });

  it("reads Go floats as the format writes them", () => {
    expect(parseValue("1e+09")).toBe(1e9);
    expect(parseValue("-0.5")).toBe(-0.5);
    expect(parseValue("+Inf")).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(parseValue(""))).toBe(true);
    expect(Number.isNaN(parseValue("1_000"))).toBe(true);
  });

  it("stays linear on a long exposition fed in small chunks", () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(`series_${i % 50}{engine="${i}",le="0.5"} ${i}`);
    const text = lines.join("\n");
    let kept = 0;
    const parser = new ExpositionParser({ wants: (n) => n === "series_7", sample: () => void kept++ });
    for (let i = 0; i < text.length; i += 1000) parser.push(text.slice(i, i + 1000));
    parser.end();
    expect(kept).toBe(400);
  });
});
