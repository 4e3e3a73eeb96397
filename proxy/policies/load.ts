/**
 * @module
 * In-flight accounting. A replica's load is the requests the proxy dispatched to it and has not
 * released: +1 on dispatch; −1 exactly once on whichever comes first of completion, error, client
 * abort, or — for `text/event-stream` answers — the `data: [DONE]` event (OpenAI streams may idle
 * after it; SGLang releases there too). This scanner finds that event across chunk boundaries
 * when the response is not measured; a measured one is read by `observe/sse-meter.ts`, which finds
 * the same event as it goes.
 */

const DONE = Buffer.from("data: [DONE]");

export class DoneScanner {
  /** The last bytes of the previous chunk, in case the marker straddles two. */
  #tail: Buffer | null = null;

  /** Whether the stream so far contains `data: [DONE]`. */
  feed(chunk: Buffer): boolean {
    if (chunk.includes(DONE)) return true;
    const tail = this.#tail;
    if (tail !== null) {
      const head = chunk.subarray(0, DONE.length - 1);
      if (Buffer.concat([tail, head]).includes(DONE)) return true;
    }
    this.#tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (DONE.length - 1))));
    return false;
  }
}
