import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test/support/until.ts";
import { LineWriter, type LineWriterOptions } from "./line-writer.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "gp-lines-"));
  dirs.push(dir);
  return dir;
}

const lineOf = (writer: string, i: number, pad = 0) => `${JSON.stringify({ writer, i, pad: "x".repeat(pad) })}\n`;
const linesIn = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "");

function writer(options: Partial<LineWriterOptions> & { path: string | null }, log: string[] = []): LineWriter {
  return new LineWriter({ bufferBytes: 1 << 20, flushMs: 0, log: (l) => log.push(l), ...options });
}

describe("line writer", () => {
  it("appends whole lines in order to a file it creates 0600, and writes what is queued on close", async () => {
    const file = path.join(tempDir(), "access.log");
    const w = writer({ path: file, flushMs: 10_000 });
    for (let i = 0; i < 1_000; i++) w.write(lineOf("a", i));
    // Nothing forces a write before the flush delay but close.
    await w.close();
    expect(linesIn(file).map((l) => JSON.parse(l).i)).toEqual([...Array(1_000).keys()]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(w.dropped).toBe(0);
  });

  it("drops and counts lines beyond its bound instead of queueing them, and says so", async () => {
    const file = path.join(tempDir(), "access.log");
    const log: string[] = [];
    const line = lineOf("a", 0, 80);
    const w = writer({ path: file, bufferBytes: line.length * 10, flushMs: 10_000 }, log);
    for (let i = 0; i < 25; i++) w.write(line);
    expect(w.dropped).toBe(15);
    await w.close();
    expect(linesIn(file)).toHaveLength(10);
    expect(log).toContain("access log: 15 lines dropped (the disk or the pipe is behind)");
  });

  it("lets two writers share one file: every line lands whole", async () => {
    const file = path.join(tempDir(), "access.log");
    const a = writer({ path: file });
    const b = writer({ path: file });
    for (let i = 0; i < 3_000; i++) {
      a.write(lineOf("a", i, i % 300));
      b.write(lineOf("b", i, (i * 7) % 300));
      // Let writes of both go out between batches.
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all([a.close(), b.close()]);
    const parsed = linesIn(file).map((l) => JSON.parse(l) as { writer: string; i: number });
    for (const name of ["a", "b"])
      expect(parsed.filter((p) => p.writer === name).map((p) => p.i)).toEqual([...Array(3_000).keys()]);
  });

  it("asks for rotation past maxSize once, keeps writing to the renamed file until reopened, then starts a new one", async () => {
    const file = path.join(tempDir(), "access.log");
    let full = 0;
    let w: LineWriter | null = null;
    w = writer({ path: file, maxSize: 2_000, onFull: () => full++ });
    let i = 0;
    while (full === 0) {
      w.write(lineOf("a", i++, 50));
      await new Promise((r) => setTimeout(r, 1));
    }
    // More lines, yet one call until the file is reopened.
    for (let k = 0; k < 20; k++) w.write(lineOf("a", i++, 50));
    await until("the lines to be written", () => linesIn(file).length === i);
    expect(full).toBe(1);
    renameSync(file, `${file}.1`);
    w.write(lineOf("a", i++));
    await until("the line after the rename in the renamed file", () => linesIn(`${file}.1`).length === i);
    w.reopen();
    w.write(lineOf("a", i++));
    await w.close();
    expect(linesIn(file).map((l) => JSON.parse(l).i)).toEqual([i - 1]);
    expect(linesIn(`${file}.1`).map((l) => JSON.parse(l).i)).toEqual([...Array(i - 1).keys()]);
  });

  it("queues lines while the file cannot be opened and writes them once it can", async () => {
    const dir = path.join(tempDir(), "later");
    const log: string[] = [];
    const w = writer({ path: path.join(dir, "access.log") }, log);
    w.write(lineOf("a", 0));
    await until("a failed open to be logged", () => log.some((l) => l.includes("cannot open")));
    mkdirSync(dir);
    w.write(lineOf("a", 1));
    await until("the queued lines to be written", () => {
      try {
        return linesIn(path.join(dir, "access.log")).length === 2;
      } catch {
        return false;
      }
    });
    await w.close();
  });

  it("writes whole lines of at most PIPE_BUF bytes at a time to a pipe two writers share", async () => {
    const fifo = path.join(tempDir(), "pipe");
    execFileSync("mkfifo", [fifo]);
    // `cat` reads the pipe; one write end blocking (the open waits for cat), one non-blocking (EAGAIN when full).
    const cat = spawn("cat", [fifo], { stdio: ["ignore", "pipe", "inherit"] });
    let received = "";
    cat.stdout.on("data", (d: Buffer) => {
      received += d.toString();
    });
    const ended = new Promise((resolve) => cat.once("close", resolve));
    const fds = [openSync(fifo, constants.O_WRONLY), openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)];
    const writers = fds.map((fd) => writer({ path: null, fd }));
    const n = 500;
    for (let i = 0; i < n; i++) {
      for (const [k, w] of writers.entries()) w.write(lineOf(String(k), i, 600 + (i % 700)));
    }
    await Promise.all(writers.map((w) => w.close(10_000)));
    for (const fd of fds) closeSync(fd);
    await ended;
    const parsed = received
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { writer: string; i: number });
    for (const name of ["0", "1"]) {
      expect(parsed.filter((p) => p.writer === name).map((p) => p.i)).toEqual([...Array(n).keys()]);
    }
  });
});
