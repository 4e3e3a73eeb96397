/**
 * @module
 * A reader of Prometheus's text exposition format 0.0.4 (what vLLM's and SGLang's `/metrics` serve),
 * fed in chunks as the body arrives, in one pass (each byte is looked at a bounded number of times).
 * It keeps only what its consumer wants: a sample line whose metric name is not wanted is skipped
 * without reading its labels, so a large exposition (histograms over many series) costs little.
 *
 * The format: lines end in `\n`; `# HELP name text` and `# TYPE name type` name a family, any other
 * `#` line is a comment; a sample is `name[{label="value",...}] value [timestamp]`, label values
 * escape `\\`, `\"` and `\n`, values are Go floats (`NaN`, `+Inf`, `-Inf` included), the timestamp
 * is milliseconds (ignored here: the reader's own clock dates a scrape).
 */

/** What the parser reports to. */
export interface ExpositionSink {
  /** Whether the samples of metric `name` are wanted (their labels are then parsed). */
  wants(name: string): boolean;
  sample(name: string, labels: Readonly<Record<string, string>>, value: number): void;
  /** A `# HELP` or `# TYPE` line named `name` (engine detection reads them too). */
  family?(name: string): void;
}

/** A line the format does not allow; the scrape fails naming it. */
export class ExpositionSyntaxError extends Error {
  constructor(line: number, message: string) {
    super(`/metrics line ${line}: ${message}`);
    this.name = "ExpositionSyntaxError";
  }
}

const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);
const isBlank = (c: number) => c === 32 || c === 9;

/** A Go float as the format writes it; NaN when it is not one (callers treat that as an error). */
export function parseValue(text: string): number {
  switch (text) {
    case "+Inf":
    case "Inf":
      return Number.POSITIVE_INFINITY;
    case "-Inf":
      return Number.NEGATIVE_INFINITY;
    case "NaN":
      return Number.NaN;
  }
  // Number("") is 0 and Number("0x10") is 16: neither is a Prometheus value.
  if (text === "" || /[xX_]/.test(text)) return Number.NaN;
  return Number(text);
}

export class ExpositionParser {
  readonly #sink: ExpositionSink;
  /** The unfinished last line of the chunks so far. */
  #rest = "";
  #line = 0;

  constructor(sink: ExpositionSink) {
    this.#sink = sink;
  }

  /** The next piece of the body (any split, even inside a line). */
  push(chunk: string): void {
    // Only the new chunk is searched for the first line end: a long line arriving in small chunks
    // is joined once, not rescanned at every chunk.
    const first = chunk.indexOf("\n");
    if (first === -1) {
      this.#rest += chunk;
      return;
    }
    let text = this.#rest === "" ? chunk : this.#rest + chunk;
    let start = 0;
    for (let nl = first + text.length - chunk.length; nl !== -1; nl = text.indexOf("\n", start)) {
      this.#parseLine(text, start, nl);
      start = nl + 1;
    }
    text = text.slice(start);
    this.#rest = text;
  }

  /** The body ended: a last line without `\n` is read too. */
  end(): void {
    if (this.#rest !== "") this.#parseLine(this.#rest, 0, this.#rest.length);
    this.#rest = "";
  }

  #parseLine(text: string, from: number, to: number): void {
    this.#line++;
    let i = from;
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    if (i < to && text.charCodeAt(to - 1) === 13) to--; // CRLF from a lenient server
    if (i >= to) return;
    if (text.charCodeAt(i) === 35 /* # */) {
      this.#comment(text, i + 1, to);
      return;
    }
    const nameStart = i;
    if (!isNameStart(text.charCodeAt(i))) throw this.#error("expected a metric name");
    while (i < to && isNameChar(text.charCodeAt(i))) i++;
    const name = text.slice(nameStart, i);
    if (!this.#sink.wants(name)) return;
    let labels: Record<string, string> = {};
    if (i < to && text.charCodeAt(i) === 123 /* { */) {
      const parsed = this.#labels(text, i + 1, to);
      labels = parsed.labels;
      i = parsed.next;
    }
    if (i >= to || !isBlank(text.charCodeAt(i))) throw this.#error(`expected a value after ${name}`);
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    let end = i;
    while (end < to && !isBlank(text.charCodeAt(end))) end++;
    const raw = text.slice(i, end);
    const value = parseValue(raw);
    if (Number.isNaN(value) && raw !== "NaN") throw this.#error(`${name}: ${JSON.stringify(raw)} is not a value`);
    // The optional timestamp (and nothing else) may follow.
    i = end;
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    if (i < to) {
      let tsEnd = i;
      while (tsEnd < to && !isBlank(text.charCodeAt(tsEnd))) tsEnd++;
      if (!/^-?\d+$/.test(text.slice(i, tsEnd))) throw this.#error(`${name}: expected a timestamp after the value`);
      i = tsEnd;
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      if (i < to) throw this.#error(`${name}: unexpected text after the timestamp`);
    }
    this.#sink.sample(name, labels, value);
  }

  /** `{` already read: `name="value"` pairs, separated by commas, a trailing comma allowed. */
  #labels(text: string, from: number, to: number): { labels: Record<string, string>; next: number } {
    const labels: Record<string, string> = {};
    let i = from;
    for (;;) {
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      if (i < to && text.charCodeAt(i) === 125 /* } */) return { labels, next: i + 1 };
      const start = i;
      if (i >= to || !isNameStart(text.charCodeAt(i))) throw this.#error("expected a label name");
      while (i < to && isNameChar(text.charCodeAt(i))) i++;
      const label = text.slice(start, i);
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== 61 /* = */) throw this.#error(`label ${label}: expected =`);
      i++;
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== 34 /* " */) throw this.#error(`label ${label}: expected a quoted value`);
      i++;
      let value = "";
      let run = i;
      for (;;) {
        if (i >= to) throw this.#error(`label ${label}: unterminated value`);
        const c = text.charCodeAt(i);
        if (c === 34) break;
        if (c === 92 /* \ */) {
          value += text.slice(run, i);
          const next = text.charCodeAt(i + 1);
          if (next === 110 /* n */) value += "\n";
          else if (next === 92 || next === 34) value += String.fromCharCode(next);
          else throw this.#error(`label ${label}: unknown escape`);
          i += 2;
          run = i;
          continue;
        }
        i++;
      }
      labels[label] = value + text.slice(run, i);
      i++;
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      const c = text.charCodeAt(i);
      if (c === 44 /* , */) i++;
      else if (c !== 125) throw this.#error(`label ${label}: expected , or }`);
    }
  }

  /** After `#`: HELP and TYPE name a family; anything else is a comment. */
  #comment(text: string, from: number, to: number): void {
    let i = from;
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    let end = i;
    while (end < to && !isBlank(text.charCodeAt(end))) end++;
    const keyword = text.slice(i, end);
    if (keyword !== "HELP" && keyword !== "TYPE") return;
    i = end;
    while (i < to && isBlank(text.charCodeAt(i))) i++;
    end = i;
    while (end < to && isNameChar(text.charCodeAt(end))) end++;
    if (end > i) this.#sink.family?.(text.slice(i, end));
  }

  #error(message: string): ExpositionSyntaxError {
    return new ExpositionSyntaxError(this.#line, message);
  }
}

/** Parses a whole body (tests, small answers). */
export function parseExposition(text: string, sink: ExpositionSink): void {
  const parser = new ExpositionParser(sink);
  parser.push(text);
  parser.end();
}
