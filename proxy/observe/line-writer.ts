/**
 * @module
 * Lines appended to a file (or standard output) off the request path: `write` only queues, and
 * one write at a time goes through the thread pool with the lines queued (whole lines, up to
 * 64 KiB; 4096 bytes to standard output, which may be a pipe several processes share), when a
 * chunk is full or `flushMs` after the first line waiting: a write per few lines would cost more
 * than the lines (each one a round trip through the thread pool, some 10 µs of CPU).
 * The queue is bounded: lines past it are dropped and counted, and a log line says so at most
 * every 10 s, so a slow disk never holds requests or memory.
 *
 * Several processes may append to one file: it is opened `O_APPEND`, so each write lands whole
 * at the end of the file (the kernel moves the offset and writes under the inode's lock), never
 * over nor inside another process's write. A write cut short (a full disk) has its rest written
 * next; a file that cannot be opened is retried every second while lines queue.
 *
 * Rotation is not this writer's: past `maxSize` (checked with `fstat` every `maxSize / 8` bytes
 * written, 64 KiB at most) it calls `onFull` once (again after a second if the file is still
 * full), and whoever rotates the file calls `reopen` afterwards (`log-rotation.ts`). Until then
 * lines keep going to the renamed file, none is lost.
 */
import { close as closeFd, fstat, open, write } from "node:fs";
import { PIPE_BUF } from "./access-log.ts";
import { DropCount } from "./drop-count.ts";

export interface LineWriterOptions {
  /** The file, created 0600 if absent; null: standard output (never closed). */
  path: string | null;
  /** With `path` null, this descriptor instead of standard output (a pipe in tests); never closed. */
  fd?: number;
  /** Bytes of lines queued at most (beyond: dropped and counted). */
  bufferBytes: number;
  /** Lines wait at most this long for others to be written with (0: the next turn of the loop). */
  flushMs: number;
  /** File size past which `onFull` is called. */
  maxSize?: number;
  /** The file passed `maxSize`: called once until `reopen`, or again 1 s later if no `reopen` came. */
  onFull?: () => void;
  log: (line: string) => void;
}

const FILE_CHUNK = 64 * 1024;
const FAILURE_REPORT_MS = 10_000;
const REOPEN_RETRY_MS = 1_000;
/** A file still full this long after `onFull` (its rotation lost or refused) is reported again. */
const FULL_ASK_AGAIN_MS = 1_000;
const STDOUT = 1;

/** Bytes of whole lines, written out together. */
interface Chunk {
  buffer: Buffer;
  used: number;
  lines: number;
}

/** Written chunks kept for the next lines (the rest are left to the garbage collector). */
const SPARE_CHUNKS = 4;

export class LineWriter {
  readonly #options: LineWriterOptions;
  readonly #chunk: number;
  readonly #checkEvery: number;
  /**
   * Lines are encoded into chunks as they come, rather than kept as strings until written: a
   * line held for the flush delay outlives young-generation collections, and an unflattened one
   * is dozens of heap objects (measured: 5 µs of garbage collection per request).
   */
  #full: Chunk[] = [];
  #current: Chunk | null = null;
  #spare: Buffer[] = [];
  /** Bytes queued, in full chunks and the current one. */
  #queued = 0;
  #fd: number | null = null;
  /** Files opened so far: a size read from a file since replaced is not acted on. */
  #opened = 0;
  /** A write, an open or a retry wait is under way: nothing else starts. */
  #busy = false;
  #timer: NodeJS.Timeout | null = null;
  #reopen = false;
  #sinceCheck = 0;
  /** When `onFull` was last called (0: not since the last open). */
  #fullAskedAt = 0;
  readonly #dropped: DropCount;
  #lastFailure = 0;
  #closing = false;
  #idle: (() => void)[] = [];

  constructor(options: LineWriterOptions) {
    this.#options = options;
    this.#chunk = options.path === null ? PIPE_BUF : FILE_CHUNK;
    const maxSize = options.maxSize ?? Number.POSITIVE_INFINITY;
    this.#checkEvery = Math.max(1, Math.min(FILE_CHUNK, Math.floor(maxSize / 8)));
    if (options.path === null) this.#fd = options.fd ?? STDOUT;
    this.#dropped = new DropCount("access log: lines", options.log);
  }

  /** Lines dropped since this writer started. */
  get dropped(): number {
    return this.#dropped.total;
  }

  /** Queues one line (with its newline); never blocks, never throws. */
  write(line: string): void {
    if (this.#closing || this.#queued + line.length > this.#options.bufferBytes) {
      this.#dropped.add(1, this.#closing ? "closed" : "the disk or the pipe is behind");
      return;
    }
    let current = this.#current;
    const room = current === null ? 0 : current.buffer.length - current.used;
    // At most 3 bytes a UTF-16 unit: only a line that may not fit is measured.
    if (line.length * 3 > room) {
      const bytes = Buffer.byteLength(line);
      if (bytes > room) {
        if (current !== null) this.#full.push(current);
        current = this.#newChunk(bytes);
        this.#current = current;
      }
    }
    const written = current!.buffer.write(line, current!.used);
    current!.used += written;
    current!.lines++;
    this.#queued += written;
    if (this.#busy || this.#timer) return;
    this.#timer = setTimeout(this.#pump, this.#full.length > 0 ? 0 : this.#options.flushMs);
    this.#timer.unref();
  }

  #newChunk(bytes: number): Chunk {
    const buffer =
      bytes <= this.#chunk ? (this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#chunk)) : Buffer.allocUnsafeSlow(bytes);
    return { buffer, used: 0, lines: 0 };
  }

  /** The file was renamed: lines go to a new file at the path from the next write on. */
  reopen(): void {
    if (this.#options.path !== null) this.#reopen = true;
  }

  /** Writes what is queued (within `timeoutMs`), then closes the file. Later lines are dropped. */
  async close(timeoutMs = 2_000): Promise<void> {
    this.#closing = true;
    if (this.#busy || this.#queued > 0) {
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = null;
        this.#pump();
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idle.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#dropped.flush();
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null && this.#options.path !== null) closeFd(fd, () => {});
  }

  readonly #pump = (): void => {
    this.#timer = null;
    if (this.#busy) return;
    if (this.#queued === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    // Opened with the first line, and again with the first line after a rotation.
    if (this.#fd === null || this.#reopen) {
      this.#open();
      return;
    }
    let chunk = this.#full.shift();
    if (chunk === undefined) {
      chunk = this.#current!;
      this.#current = null;
    }
    this.#queued -= chunk.used;
    this.#busy = true;
    this.#write(this.#fd, chunk.buffer.subarray(0, chunk.used), chunk.lines, chunk.buffer);
  };

  /** Drops every queued line (a file that cannot be opened while closing, or standard output closed). */
  #dropQueued(reason: string): void {
    const lines = this.#full.reduce((n, c) => n + c.lines, 0) + (this.#current?.lines ?? 0);
    this.#dropped.add(lines, reason);
    this.#full = [];
    this.#current = null;
    this.#queued = 0;
  }

  /** Writes `data` (`lines` whole lines) to `fd`; `owner` is the chunk's buffer, reused afterwards. */
  #write(fd: number, data: Buffer, lines: number, owner: Buffer): void {
    write(fd, data, 0, data.length, null, (err, written) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
          // A non-blocking pipe that is full: the same bytes again shortly (a write under PIPE_BUF is all or nothing).
          setTimeout(() => this.#write(fd, data, lines, owner), 20).unref();
          return;
        }
        this.#dropped.add(lines, `write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        this.#recycle(owner);
        this.#afterWrite();
        return;
      }
      if (written < data.length) {
        this.#write(fd, data.subarray(written), lines, owner);
        return;
      }
      this.#recycle(owner);
      this.#sinceCheck += written;
      if (this.#options.onFull && this.#sinceCheck >= this.#checkEvery) {
        this.#sinceCheck = 0;
        this.#checkSize(fd, this.#opened);
      }
      this.#afterWrite();
    });
  }

  #next(): void {
    this.#busy = false;
    this.#pump();
  }

  #recycle(buffer: Buffer): void {
    if (buffer.length === this.#chunk && this.#spare.length < SPARE_CHUNKS) this.#spare.push(buffer);
  }

  /** A write is done: the next one when a chunk is full (or on close), else after `flushMs`. */
  #afterWrite(): void {
    this.#busy = false;
    if (this.#full.length > 0 || this.#closing || this.#queued === 0) this.#pump();
    else if (!this.#timer) {
      this.#timer = setTimeout(this.#pump, this.#options.flushMs);
      this.#timer.unref();
    }
  }

  #checkSize(fd: number, opened: number): void {
    fstat(fd, (err, stats) => {
      if (err || opened !== this.#opened || stats.size < (this.#options.maxSize ?? Number.POSITIVE_INFINITY)) return;
      const now = Date.now();
      if (this.#fullAskedAt !== 0 && now - this.#fullAskedAt < FULL_ASK_AGAIN_MS) return;
      this.#fullAskedAt = now;
      this.#options.onFull?.();
    });
  }

  #open(): void {
    const path = this.#options.path;
    if (path === null) {
      // Standard output closed (only `close` does that): nothing more goes out.
      this.#dropQueued("closed");
      return;
    }
    this.#busy = true;
    this.#reopen = false;
    open(path, "a", 0o600, (err, fd) => {
      if (err) {
        this.#fail(`access log: cannot open ${path} (${err.code ?? err.message}); retrying`);
        // With a file still open, lines keep going there; else they queue (within the bound).
        if (this.#fd !== null) {
          this.#next();
          return;
        }
        if (this.#closing) {
          this.#dropQueued(`cannot open ${path}`);
          this.#next();
          return;
        }
        setTimeout(() => this.#next(), REOPEN_RETRY_MS).unref();
        return;
      }
      const old = this.#fd;
      this.#fd = fd;
      this.#opened++;
      this.#fullAskedAt = 0;
      this.#sinceCheck = 0;
      if (old !== null) closeFd(old, () => {});
      this.#next();
    });
  }

  #fail(message: string): void {
    const now = Date.now();
    if (now - this.#lastFailure < FAILURE_REPORT_MS) return;
    this.#lastFailure = now;
    this.#options.log(message);
  }
}
