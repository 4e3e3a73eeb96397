/**
 * @module
 * Requests from the parent to its child processes that expect an answer (apply, certificates,
 * challenges, stats): each carries an id, its answer comes back with the same id, and it fails when
 * the child does not answer within a bound or exits first (`ProcessGoneError`, which callers treat
 * as "its replacement starts with the current state").
 */
import { ProxyProcessError } from "./errors.ts";
import type { Child } from "./process-fork.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";

/** The child asked exited (or had already) before it answered. */
export class ProcessGoneError extends ProxyProcessError {
  constructor(pid: number | undefined) {
    super(`proxy process ${pid ?? "?"} exited`);
    this.name = "ProcessGoneError";
  }
}

interface Pending {
  /** Whose request it is (a position of the pool), so the requests to a child that exits fail together. */
  owner: object;
  resolve: (message: FromProcess) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class ProcessRpc {
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** An id for the next request. */
  nextId(): number {
    return this.#nextId++;
  }

  /** Sends `message` to `child` (null: gone already) on behalf of `owner`; resolves with the answer. */
  request(owner: object, child: Child | null, message: ToProcess & { id: number }): Promise<FromProcess> {
    if (!child) return Promise.reject(new ProcessGoneError(undefined));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(message.id);
        reject(
          new ProxyProcessError(`proxy process ${child.process.pid} did not answer within ${this.#timeoutMs / 1000}s`),
        );
      }, this.#timeoutMs);
      this.#pending.set(message.id, { owner, resolve, reject, timer });
      child.send(message);
    });
  }

  /** A child's message that may answer a request (unknown or late ids are ignored). */
  answer(message: FromProcess): void {
    if (!("id" in message)) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve(message);
  }

  /** `owner`'s child exited: its requests fail with `ProcessGoneError`. */
  gone(owner: object, pid: number | undefined): void {
    for (const [id, pending] of this.#pending) {
      if (pending.owner !== owner) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new ProcessGoneError(pid));
    }
  }
}
