/**
 * @module
 * What the pool (`process-pool.ts`) needs of a serving process, whichever way it runs: a forked
 * child (`process-fork.ts`) or the server in the pool's own process (`in-process-child.ts`).
 */
import type { FromProcess, ToProcess } from "./process-protocol.ts";

/**
 * What the pool reads of a serving process: a `ChildProcess`'s, or the in-process server's
 * (`in-process-child.ts`), whose pid is the parent's own.
 */
export interface ChildProcessFace {
  readonly pid?: number | undefined;
  readonly connected: boolean;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: "message", listener: (message: FromProcess, handle: object | undefined) => void): this;
  off(event: "message", listener: (message: FromProcess, handle: object | undefined) => void): this;
  once(event: "exit", listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  /** The IPC channel closed: every message the child sent has been emitted. */
  once(event: "disconnect", listener: () => void): this;
  once(event: "error", listener: (err: Error) => void): this;
}

/** What the pool needs of a child, whether cluster, plain fork or the parent's own process serves. */
export interface Child {
  readonly process: ChildProcessFace;
  send(message: ToProcess, handle?: object): void;
}
