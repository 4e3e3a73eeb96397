/**
 * @module
 * Lines appended to a file (or standard output) off the request path: `write` only queues, and
 * one write at a time goes through the thread pool with every line queued since (whole lines,
 * up to 64 KiB; 4096 bytes to standard output, which may be a pipe several processes share).
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

export class LineWriter {
  readonly #options: LineWriterOptions;
  readonly #chunk: number;
  readonly #checkEvery: number;
  #pending: string[] = [];
  /** Characters queued (a byte count would need encoding each line). */
  #pendingChars = 0;
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
    if (this.#closing || this.#pendingChars + line.length > this.#options.bufferBytes) {
      this.#dropped.add(1, this.#closing ? "closed" : "the disk or the pipe is behind");
      return;
    }
    this.#pending.push(line);
    this.#pendingChars += line.length;
    if (this.#busy || this.#timer) return;
    this.#timer = setTimeout(this.#pump, this.#pendingChars >= this.#chunk ? 0 : this.#options.flushMs);
    this.#timer.unref();
  }

  /** The file was renamed: lines go to a new file at the path from the next write on. */
  reopen(): void {
    if (this.#options.path !== null) this.#reopen = true;
  }

  /** Writes what is queued (within `timeoutMs`), then closes the file. Later lines are dropped. */
  async close(timeoutMs = 2_000): Promise<void> {
    this.#closing = true;
    if (this.#busy || this.#pending.length > 0) {
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
    if (this.#pending.length === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    // Opened with the first line, and again with the first line after a rotation.
    if (this.#fd === null || this.#reopen) {
      this.#open();
      return;
    }
    let n = 0;
    let chars = 0;
    // Whole lines up to the chunk (a line alone is written even if longer, which lines are not).
    while (n < this.#pending.length && (n === 0 || chars + this.#pending[n]!.length <= this.#chunk)) {
      chars += this.#pending[n]!.length;
      n++;
    }
    const lines = n === this.#pending.length ? this.#pending : this.#pending.splice(0, n);
    if (lines === this.#pending) this.#pending = [];
    this.#pendingChars -= chars;
    this.#busy = true;
    this.#write(this.#fd, Buffer.from(lines.join("")), n);
  };

  #write(fd: number, buffer: Buffer, lines: number): void {
    write(fd, buffer, 0, buffer.length, null, (err, written) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
          // A non-blocking pipe that is full: the same bytes again shortly (a write under PIPE_BUF is all or nothing).
          setTimeout(() => this.#write(fd, buffer, lines), 20).unref();
          return;
        }
        this.#dropped.add(lines, `write failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        this.#next();
        return;
      }
      if (written < buffer.length) {
        this.#write(fd, buffer.subarray(written), lines);
        return;
      }
      this.#sinceCheck += written;
      if (this.#options.onFull && this.#sinceCheck >= this.#checkEvery) {
        this.#sinceCheck = 0;
        this.#checkSize(fd, this.#opened);
      }
      this.#next();
    });
  }

  #next(): void {
    this.#busy = false;
    this.#pump();
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
      this.#dropped.add(this.#pending.length, "closed");
      this.#pending = [];
      this.#pendingChars = 0;
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
          this.#dropped.add(this.#pending.length, `cannot open ${path}`);
          this.#pending = [];
          this.#pendingChars = 0;
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
