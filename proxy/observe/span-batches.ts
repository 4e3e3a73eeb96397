/**
 * @module
 * Encoded spans waiting for export, written into reused 64 KiB chunks as they come and grouped in
 * batches of at most `size` spans, each batch one request body's worth (`otlp-exporter.ts`). Not
 * a `Buffer` per span: thousands of small buffers a second, each held until its batch leaves,
 * cost more in garbage collection than the encoding itself.
 */

const CHUNK = 64 * 1024;
const SPARE_CHUNKS = 8;
const COMMA = 0x2c;

interface Chunk {
  buffer: Buffer;
  used: number;
}

/** Spans of one request body, comma-separated JSON objects. */
export interface Batch {
  chunks: Chunk[];
  spans: number;
}

export class SpanBatches {
  readonly #size: number;
  #ready: Batch[] = [];
  #open: Batch | null = null;
  #spare: Buffer[] = [];
  /** Spans queued in every batch. */
  #spans = 0;

  /** `size`: spans per batch at most. */
  constructor(size: number) {
    this.#size = size;
  }

  get spans(): number {
    return this.#spans;
  }

  /** A batch is full: it can go without waiting for more. */
  get full(): boolean {
    return this.#ready.length > 0;
  }

  /** Adds one encoded span (a JSON object). */
  add(span: string): void {
    let batch = this.#open;
    if (batch === null) {
      batch = { chunks: [], spans: 0 };
      this.#open = batch;
    }
    const separator = batch.spans > 0 ? 1 : 0;
    let chunk = batch.chunks.at(-1);
    const room = chunk === undefined ? 0 : chunk.buffer.length - chunk.used;
    // At most 3 bytes a UTF-16 unit: only a span that may not fit is measured.
    if ((span.length * 3 + separator > room && Buffer.byteLength(span) + separator > room) || chunk === undefined) {
      const bytes = Buffer.byteLength(span) + separator;
      chunk = {
        buffer: bytes <= CHUNK ? (this.#spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK)) : Buffer.allocUnsafeSlow(bytes),
        used: 0,
      };
      batch.chunks.push(chunk);
    }
    if (separator) chunk.buffer[chunk.used++] = COMMA;
    chunk.used += chunk.buffer.write(span, chunk.used);
    batch.spans++;
    this.#spans++;
    if (batch.spans >= this.#size) {
      this.#ready.push(batch);
      this.#open = null;
    }
  }

  /** The oldest batch (a full one first, else the one being filled), taken out; null: none. */
  take(): Batch | null {
    const batch = this.#ready.shift() ?? this.#open;
    if (batch === null) return null;
    if (batch === this.#open) this.#open = null;
    this.#spans -= batch.spans;
    return batch;
  }

  /** The batch's spans between `prefix` and `suffix`, in one buffer; its chunks are reused afterwards. */
  body(batch: Batch, prefix: Buffer, suffix: Buffer): Buffer {
    const parts = [prefix];
    for (const chunk of batch.chunks) parts.push(chunk.buffer.subarray(0, chunk.used));
    parts.push(suffix);
    const body = Buffer.concat(parts);
    for (const chunk of batch.chunks) {
      if (chunk.buffer.length === CHUNK && this.#spare.length < SPARE_CHUNKS) this.#spare.push(chunk.buffer);
    }
    batch.chunks = [];
    return body;
  }

  /** Drops every queued span; returns how many. */
  clear(): number {
    const dropped = this.#spans;
    this.#ready = [];
    this.#open = null;
    this.#spans = 0;
    return dropped;
  }
}
