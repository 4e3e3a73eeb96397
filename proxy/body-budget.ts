/**
 * @module
 * The bounds of request-body buffering (`body-buffer.ts`) and the process-wide budget the bodies
 * being buffered draw on. Apart from `body-buffer.ts` so that the process context (`context.ts`),
 * which owns the budget, and the settings need not import the buffering code that uses the context.
 */

export interface BodyBufferSettings {
  /** Bytes of one body read before dialling a replica; 0 = stream every body as it comes. */
  requestBytes: number;
  /** Bytes all the bodies being buffered in one process may hold together. */
  processBytes: number;
  /** Longest wait between two reads of a request body (nginx `client_body_timeout`), then 408. */
  readTimeoutMs: number;
}

export const DEFAULT_BODY_BUFFER: BodyBufferSettings = {
  requestBytes: 1024 * 1024,
  processBytes: 64 * 1024 * 1024,
  readTimeoutMs: 60_000,
};

/** The bytes buffered bodies hold in this process, against `processBytes`. */
export class BodyBudget {
  readonly #cap: number;
  #used = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  get used(): number {
    return this.#used;
  }

  take(bytes: number): boolean {
    if (this.#used + bytes > this.#cap) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used -= bytes;
  }
}
