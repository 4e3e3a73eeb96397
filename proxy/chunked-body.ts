/**
 * @module
 * Chunked framing of unsized response bodies, done here instead of by Node. Node frames each
 * `res.write` as four socket writes (size, CRLF, data, CRLF) that meet again in one vectored write;
 * for token streams (thousands of small SSE events per second) that bookkeeping is a quarter of the
 * proxy's CPU per event. Small chunks are framed into one buffer instead; large ones go as three
 * writes, which Node's cork still joins, without copying.
 *
 * It relies on `OutgoingMessage#chunkedEncoding`, the flag Node sets in `writeHead` when it decided
 * to frame the body (HTTP/1.1, no Content-Length, a status with a body) and reads on every write and
 * on `end`. Taking over clears it, so Node writes our bytes as they are and no final chunk of its own.
 */
import type { ServerResponse } from "node:http";

type Framed = ServerResponse & { chunkedEncoding?: boolean };

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");
/** Above this, copying the chunk into a framed buffer costs more than the extra writes. */
const COPY_LIMIT = 16 * 1024;

/** Takes framing over from Node if Node was about to chunk this body (call right after writeHead). */
export function takeOverChunking(res: ServerResponse): boolean {
  const framed = res as Framed;
  if (framed.chunkedEncoding !== true) return false;
  framed.chunkedEncoding = false;
  return true;
}

/** Writes one chunk with its framing; returns `res.write`'s backpressure answer. */
export function writeChunk(res: ServerResponse, chunk: Buffer): boolean {
  const length = chunk.length;
  if (length === 0) return true;
  const head = `${length.toString(16)}\r\n`;
  if (length > COPY_LIMIT) {
    res.write(head, "latin1");
    res.write(chunk);
    return res.write(CRLF);
  }
  const framed = Buffer.allocUnsafe(head.length + length + 2);
  framed.write(head, 0, "latin1");
  chunk.copy(framed, head.length);
  framed[framed.length - 2] = 13;
  framed[framed.length - 1] = 10;
  return res.write(framed);
}

/** Ends a body framed by {@link writeChunk} with the last chunk. */
export function endChunked(res: ServerResponse): void {
  res.end(LAST_CHUNK);
}
