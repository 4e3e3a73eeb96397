/**
 * @module
 * Everything the CLI takes from its process, gathered in one object so that tests can run the whole
 * CLI in-process with their own streams, environment, clock and Ctrl-C.
 */
import { homedir } from "node:os";
import { setTimeout as delay } from "node:timers/promises";

export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: Output;
  stderr: Output;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  homedir: string;
  /** Calls `handler` on Ctrl-C until the returned function is called; outside of it Ctrl-C kills us. */
  onInterrupt(handler: () => void): () => void;
  /** Resolves after `ms`, or rejects with an AbortError when `signal` fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  now(): number;
}

export function processIo(): Io {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    homedir: homedir(),
    onInterrupt(handler) {
      process.on("SIGINT", handler);
      return () => {
        process.off("SIGINT", handler);
      };
    },
    sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined),
    now: () => Date.now(),
  };
}
