/**
 * @module
 * An {@link Io} for running the CLI in-process: captured output, scripted stdin answers, a fake
 * Ctrl-C, and a clock whose sleeps return at once but are recorded (so polling intervals can be
 * asserted without waiting for them).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, onTestFinished } from "vitest";
import type { Io, Output } from "../../cli/io.ts";
import { run } from "../../cli/run.ts";

export interface CapturedOutput extends Output {
  text: string;
}

export interface TestIo extends Io {
  stdout: CapturedOutput;
  stderr: CapturedOutput;
  /** Milliseconds of every sleep the CLI asked for, in order. */
  sleeps: number[];
  /** Simulates Ctrl-C: calls the handlers registered through `onInterrupt`. */
  interrupt(): void;
  /** Number of handlers currently listening for Ctrl-C. */
  interruptListeners(): number;
}

export interface TestIoOptions {
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  homedir?: string;
  tty?: boolean;
  now?: number;
}

export function capture(tty = false): CapturedOutput {
  const out: CapturedOutput = {
    text: "",
    isTTY: tty,
    columns: 200,
    write(chunk: string) {
      out.text += chunk;
      return true;
    },
  };
  return out;
}

/**
 * A new empty directory under the system's temporary one, removed when the test that made it ends
 * (or, made outside a test, when its suite's tests have run). Every CLI test gets two (its cwd and
 * home): ~700 a run, which were left behind in /tmp.
 */
export function tempDir(prefix = "gateplane-cli-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    onTestFinished(remove);
  } catch {
    afterAll(remove);
  }
  return dir;
}

export function testIo(options: TestIoOptions = {}): TestIo {
  const handlers = new Set<() => void>();
  const stdin = Readable.from(options.stdin === undefined ? [] : [options.stdin]) as Readable & { isTTY?: boolean };
  const io: TestIo = {
    stdin,
    stdout: capture(options.tty),
    stderr: capture(false),
    env: options.env ?? {},
    cwd: options.cwd ?? tempDir(),
    homedir: options.homedir ?? tempDir("gateplane-home-"),
    sleeps: [],
    onInterrupt(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async sleep(ms, signal) {
      io.sleeps.push(ms);
      signal?.throwIfAborted();
      // A macrotask, so that a pending interrupt or socket event gets its turn as it would in real time.
      await new Promise((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
    },
    now: () => options.now ?? Date.now(),
    interrupt() {
      for (const handler of [...handlers]) handler();
    },
    interruptListeners: () => handlers.size,
  };
  return io;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  io: TestIo;
}

/** Runs the CLI against `io` and returns its exit code and what it printed. */
export async function runCli(argv: string[], io: TestIo): Promise<CliRun> {
  const code = await run(argv, io);
  return { code, stdout: io.stdout.text, stderr: io.stderr.text, io };
}
