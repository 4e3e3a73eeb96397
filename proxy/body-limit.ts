/**
 * @module
 * Counts a chunked request body on its way to the replica and fails the stream once it passes the
 * service's limit (a Content-Length body is checked before forwarding instead). Sitting between the
 * client request and undici also keeps undici's clean-up from destroying the client's connection when
 * the upstream side fails: the proxy still owes the client an answer.
 */
import { Transform, type TransformCallback } from "node:stream";
import { BodyTooLargeError } from "./errors.ts";

export class BodyLimit extends Transform {
  readonly #limit: number;
  #seen = 0;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) callback(new BodyTooLargeError(this.#limit));
    else callback(null, chunk);
  }
}
