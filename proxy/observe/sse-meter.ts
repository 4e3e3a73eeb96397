/**
 * @module
 * Measures an LLM's event stream as it passes through (`text/event-stream`), chunk by chunk, across
 * any chunk boundaries: which `data:` events carry generated content, when the first one came (time
 * to first token) and the gaps between them (inter-token latency), and the token counts of the
 * response's own `usage` when it carries one. It also finds `data: [DONE]`, where the replica's load
 * is released (`policies/load.ts`).
 *
 * Content events:
 *  - OpenAI chat chunks: a non-empty `choices[].delta.content`, `reasoning_content` / `reasoning`,
 *    or `tool_calls`;
 *  - OpenAI completions chunks: a non-empty `choices[].text`;
 *  - SGLang's native `/generate` stream: `meta_info.completion_tokens` grew (the text is cumulative);
 *    its `meta_info` counts are the engine's own, hence exact.
 * Usage: the final chunk of a stream asked with `stream_options.include_usage` (`choices: []`,
 * `usage` non-null; continuous usage on every chunk works too, the last one wins).
 *
 * Cheap on purpose (`bench:proxy` measures it): lines are found with `indexOf`, and `data:`
 * payloads are classified by looking for their keys in the bytes (`json-scan.ts`). A content chunk
 * costs one search for `"content"` in its bytes (the search's result is kept across the events of
 * one chunk, so a chunk of many events is searched once); only payloads without content are looked
 * at further, and only a payload with a non-null `usage` object is parsed as JSON (once per stream).
 * So running usage on content chunks (`continuous_usage_stats`) is not read: the final usage-only
 * chunk, which those streams also send, carries the totals. Memory: the unfinished line (at most
 * 256 KiB, longer lines are skipped) and, when withholding, the unfinished event.
 *
 * Withholding (`usage: include`, `include-usage.ts`): when the gateway added `include_usage` to the
 * request, the usage-only event the client did not ask for is dropped from what is relayed; the
 * meter then hands on complete events only (an event's bytes are held until its blank line).
 */
import { hasNonEmptyArray, hasNonEmptyString, hasObject, jsonKey, lastNumber, nonEmptyStringAt } from "./json-scan.ts";

const LF = 0x0a;
const CR = 0x0d;
/** Longest line parsed; the rest of a longer one is skipped (it cannot be an LLM's chunk). */
const MAX_LINE = 256 * 1024;
/** Longest event held back while withholding; a longer one is relayed as it comes. */
const MAX_HELD_EVENT = 1024 * 1024;

const DONE = Buffer.from("[DONE]", "latin1");
const CONTENT = jsonKey("content");
const REASONING_CONTENT = jsonKey("reasoning_content");
const REASONING = jsonKey("reasoning");
const TOOL_CALLS = jsonKey("tool_calls");
const TEXT = jsonKey("text");
const USAGE = jsonKey("usage");
const META_INFO = jsonKey("meta_info");
const PROMPT_TOKENS = jsonKey("prompt_tokens");
const COMPLETION_TOKENS = jsonKey("completion_tokens");

const nonEmpty = (s: unknown) => typeof s === "string" && s.length > 0;
const tokenCount = (n: unknown): number | null =>
  Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : null;

/** What a parsed usage chunk's choices say: content or not (continuous usage puts usage on every chunk). */
function parsedHasContent(choices: unknown[]): boolean {
  for (const c of choices) {
    if (typeof c !== "object" || c === null) continue;
    const choice = c as { delta?: Record<string, unknown>; text?: unknown };
    const d = choice.delta;
    if (d && (nonEmpty(d.content) || nonEmpty(d.reasoning_content) || nonEmpty(d.reasoning))) return true;
    if (d && Array.isArray(d.tool_calls) && d.tool_calls.length > 0) return true;
    if (nonEmpty(choice.text)) return true;
  }
  return false;
}

export class SseMeter {
  readonly #withhold: boolean;
  /** `performance.now()` of the first content event, -1 before it. */
  firstContentAt = -1;
  lastContentAt = -1;
  contentEvents = 0;
  /** Seconds between consecutive content events. */
  readonly gaps: number[] = [];
  /** The response's own counts (`usage`, or SGLang's `meta_info`), null while none came. */
  inputTokens: number | null = null;
  outputTokens: number | null = null;
  /** `data: [DONE]` was seen. */
  done = false;
  /** The unfinished line of the previous chunk (a copy). */
  #carry: Buffer | null = null;
  /** The current line is longer than `MAX_LINE`: skip to its end. */
  #skipping = false;
  /** Withholding: the bytes of the current event from earlier chunks, not yet relayed. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** Withholding: the current event is too long to hold and is relayed as it comes. */
  #passing = false;
  /** The current event is a usage-only chunk (`choices: []`). */
  #usageOnly = false;
  /** The chunk `#contentAt` refers to. */
  #searched: Buffer | null = null;
  /** Where the next `"content"` key of `#searched` is past the last line searched (-1: none; -2: not known). */
  #contentAt = -1;

  /** `withhold`: drop usage-only events from what `feed` returns (the gateway asked for them, not the client). */
  constructor(withhold = false) {
    this.#withhold = withhold;
  }

  /** Output tokens are content events, not the response's count. */
  get estimated(): boolean {
    return this.outputTokens === null && this.contentEvents > 0;
  }

  /**
   * Reads one chunk that arrived at `now` (ms, `performance.now()`); returns the bytes to relay:
   * the chunk itself, unless withholding.
   */
  feed(chunk: Buffer, now: number): Buffer {
    const withhold = this.#withhold;
    this.#searched = null;
    const pieces: Buffer[] | null = withhold ? [] : null;
    /** Withholding: where the bytes of the current event start in this chunk. */
    let eventFrom = 0;
    let pos = 0;
    const length = chunk.length;
    while (pos < length) {
      const nl = chunk.indexOf(LF, pos);
      if (nl === -1) break;
      let blank: boolean;
      if (this.#skipping) {
        this.#skipping = false;
        blank = false;
      } else if (this.#carry !== null) {
        const line = Buffer.concat([this.#carry, chunk.subarray(pos, nl)]);
        this.#carry = null;
        blank = this.#line(line, 0, line.length, now);
      } else {
        blank = this.#line(chunk, pos, nl, now);
      }
      pos = nl + 1;
      if (!blank) continue;
      if (pieces) {
        if (this.#usageOnly && !this.#passing) this.#dropHeld();
        else {
          this.#flushHeld(pieces);
          pieces.push(chunk.subarray(eventFrom, pos));
        }
        eventFrom = pos;
        this.#passing = false;
      }
      this.#usageOnly = false;
    }
    if (pos < length && !this.#skipping) {
      const rest = chunk.subarray(pos);
      const carried = (this.#carry?.length ?? 0) + rest.length;
      if (carried > MAX_LINE) {
        this.#carry = null;
        this.#skipping = true;
      } else {
        this.#carry = this.#carry ? Buffer.concat([this.#carry, rest]) : Buffer.from(rest);
      }
    }
    if (!pieces) return chunk;
    if (eventFrom < length) {
      const tail = chunk.subarray(eventFrom);
      if (this.#passing || this.#heldBytes + tail.length > MAX_HELD_EVENT) {
        this.#flushHeld(pieces);
        pieces.push(tail);
        this.#passing = true;
      } else {
        this.#held.push(Buffer.from(tail));
        this.#heldBytes += tail.length;
      }
    }
    if (pieces.length === 1) return pieces[0]!;
    return Buffer.concat(pieces);
  }

  /** The stream ended: the bytes still held (an unfinished last event), relayed as they came. */
  end(): Buffer | null {
    if (this.#heldBytes === 0) return null;
    const pieces: Buffer[] = [];
    this.#flushHeld(pieces);
    return Buffer.concat(pieces);
  }

  #flushHeld(into: Buffer[]): void {
    if (this.#heldBytes === 0) return;
    for (const b of this.#held) into.push(b);
    this.#dropHeld();
  }

  #dropHeld(): void {
    this.#held = [];
    this.#heldBytes = 0;
  }

  /** One line (`buf[start..end)`, without its LF); returns whether it is blank (the end of an event). */
  #line(buf: Buffer, start: number, end: number, now: number): boolean {
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start) return true;
    // `data:` (bytes compared by hand: a native call per line costs more than the line's search).
    if (
      end - start < 5 ||
      buf[start] !== 0x64 ||
      buf[start + 1] !== 0x61 ||
      buf[start + 2] !== 0x74 ||
      buf[start + 3] !== 0x61 ||
      buf[start + 4] !== 0x3a
    )
      return false;
    let from = start + 5;
    if (buf[from] === 0x20) from++;
    if (end - from === DONE.length && buf[from] === 0x5b && buf.subarray(from, end).equals(DONE)) {
      this.done = true;
      return false;
    }
    if (this.#hasContent(buf, from, end) || this.#isContent(buf.subarray(from, end))) {
      this.contentEvents++;
      if (this.firstContentAt < 0) this.firstContentAt = now;
      else this.gaps.push((now - this.lastContentAt) / 1000);
      this.lastContentAt = now;
    }
    return false;
  }

  /**
   * The payload `buf[from..end)` has a non-empty `"content"` (the common chat chunk). A search that
   * finds none in the line remembers where the next one is, so a chunk of many events is searched
   * once however many lines have no content.
   */
  #hasContent(buf: Buffer, from: number, end: number): boolean {
    const known = buf === this.#searched && (this.#contentAt === -1 || this.#contentAt >= from);
    let at = known ? this.#contentAt : buf.indexOf(CONTENT, from);
    this.#searched = buf;
    while (at !== -1 && at < end) {
      if (nonEmptyStringAt(buf, at, CONTENT.length, end)) {
        // Unknown past this line: the next line searches from its own start.
        this.#contentAt = -2;
        return true;
      }
      at = buf.indexOf(CONTENT, at + CONTENT.length);
    }
    this.#contentAt = at;
    return false;
  }

  /** A payload without non-empty `"content"`: usage, SGLang's native stream, or other kinds of content. */
  #isContent(payload: Buffer): boolean {
    if (hasObject(payload, USAGE)) return this.#usageChunk(payload);
    if (payload.indexOf(META_INFO) !== -1) {
      // SGLang's native stream: the engine's cumulative counts in every event.
      const prompt = lastNumber(payload, PROMPT_TOKENS);
      const completion = lastNumber(payload, COMPLETION_TOKENS);
      if (prompt !== null) this.inputTokens = prompt;
      if (completion === null) return hasNonEmptyString(payload, TEXT);
      const grew = completion > (this.outputTokens ?? 0);
      this.outputTokens = completion;
      return grew;
    }
    return (
      hasNonEmptyString(payload, REASONING_CONTENT) ||
      hasNonEmptyString(payload, REASONING) ||
      hasNonEmptyArray(payload, TOOL_CALLS) ||
      hasNonEmptyString(payload, TEXT)
    );
  }

  /** A chunk with a `usage` object: parsed (rare: once per stream, or every chunk with continuous usage). */
  #usageChunk(payload: Buffer): boolean {
    let parsed: { usage?: Record<string, unknown>; choices?: unknown };
    try {
      parsed = JSON.parse(payload.toString("utf8"));
    } catch {
      return false;
    }
    const usage = parsed?.usage;
    if (typeof usage === "object" && usage !== null) {
      const input = tokenCount(usage.prompt_tokens);
      const output = tokenCount(usage.completion_tokens);
      if (input !== null) this.inputTokens = input;
      if (output !== null) this.outputTokens = output;
    }
    const choices = parsed?.choices;
    if (!Array.isArray(choices)) return false;
    if (choices.length === 0) {
      this.#usageOnly = true;
      return false;
    }
    return parsedHasContent(choices);
  }
}
