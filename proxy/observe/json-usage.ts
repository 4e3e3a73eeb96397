/**
 * @module
 * Token counts of a whole (non-streamed) JSON answer, read as its chunks pass through, never
 * buffering the body: OpenAI-style `usage` (`prompt_tokens`, `completion_tokens`: vLLM, SGLang, TGI's
 * OpenAI API…) and SGLang's native `meta_info` carry the same two keys, so the scanner looks for
 * those keys' numbers in the bytes (`json-scan.ts`). Several answers in one body (SGLang's batch
 * `/generate`, a JSON list) add up. Memory: the last 64 bytes of the previous chunk, so a key and its
 * number that straddle two chunks are still read.
 */
import { jsonKey, numberAt } from "./json-scan.ts";

const PROMPT_TOKENS = jsonKey("prompt_tokens");
const COMPLETION_TOKENS = jsonKey("completion_tokens");
/** Enough for a key, its `:` with some whitespace, and a number of up to 15 digits. */
const OVERLAP = 64;

export class JsonUsage {
  #input: number | null = null;
  #output: number | null = null;
  /** The last bytes seen (a copy) whose keys are not read yet: fewer than `OVERLAP` bytes followed them. */
  #pending: Buffer | null = null;

  get inputTokens(): number | null {
    return this.#input;
  }

  get outputTokens(): number | null {
    return this.#output;
  }

  feed(chunk: Buffer): void {
    const pending = this.#pending;
    if (pending !== null) {
      // Keys that start in the pending bytes, read with the beginning of this chunk after them.
      const joined = Buffer.concat([pending, chunk.subarray(0, OVERLAP)]);
      const ready = Math.min(pending.length, joined.length - OVERLAP);
      if (ready > 0) this.#scan(joined, ready);
      if (ready < pending.length) {
        // A short chunk: what is still unread is less than OVERLAP bytes, kept whole.
        this.#pending = Buffer.concat([pending.subarray(Math.max(0, ready)), chunk]);
        return;
      }
    }
    if (chunk.length > OVERLAP) this.#scan(chunk, chunk.length - OVERLAP);
    this.#pending = Buffer.from(chunk.subarray(Math.max(0, chunk.length - OVERLAP)));
  }

  /** The body ended: keys in the last bytes are read too. */
  end(): void {
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null) this.#scan(pending, pending.length);
  }

  /** Reads the keys that start in `buf[0..until)`. */
  #scan(buf: Buffer, until: number): void {
    for (let at = buf.indexOf(PROMPT_TOKENS); at !== -1 && at < until; at = buf.indexOf(PROMPT_TOKENS, at + 1)) {
      const n = numberAt(buf, at, PROMPT_TOKENS.length);
      if (n !== null) this.#input = (this.#input ?? 0) + n;
    }
    for (
      let at = buf.indexOf(COMPLETION_TOKENS);
      at !== -1 && at < until;
      at = buf.indexOf(COMPLETION_TOKENS, at + 1)
    ) {
      const n = numberAt(buf, at, COMPLETION_TOKENS.length);
      if (n !== null) this.#output = (this.#output ?? 0) + n;
    }
  }
}
