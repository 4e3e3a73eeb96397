/**
 * @module
 * The pool's one serving process, served in the parent's own process (docs/gateway-host.md#one-process):
 * `process-serve.ts` behind the pool's `Child` face, over a channel inside this process instead of
 * IPC. With one process a child would only relay: it costs a Node process, a second copy of the
 * configuration, and an IPC round trip per host-wide routing decision, for nothing but its restart
 * with the socket kept bound. Everything above the `Child` face (`process-pool.ts`) stays as it is.
 *
 * The channel delivers each message in a microtask of its own, in order, never within the `send`
 * that sent it, as IPC delivers them in a later turn: neither side can re-enter the other. Messages
 * are handed over as they are, not copied: neither side mutates a message once sent (the documents
 * already go unchanged from the pool to every process, and a child's series are summed into copies).
 *
 * A crash of the in-process server is the proxy's: an exception nobody catches ends this process
 * with a non-zero code, as it would the child's; the agent's proxy link starts the proxy again
 * (`agent/proxy-link.ts`), which serves its stored document. The pool killing its child while it
 * serves (it could not return to the previous document) is such a crash too: this process exits
 * with code 1. Killed while starting or draining, the server only stops and reports its exit.
 */
import { EventEmitter } from "node:events";
import type { Child, ChildProcessFace } from "./child-face.ts";
import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { type Serving, serve } from "./process-serve.ts";

/** Exit code of a proxy whose in-process server was killed while it served. */
export const IN_PROCESS_CRASH_CODE = 1;

/** The in-process server as the pool sees a child process. */
class InProcessFace extends EventEmitter implements ChildProcessFace {
  readonly pid = process.pid;
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly #kill: (signal: NodeJS.Signals) => boolean;

  constructor(kill: (signal: NodeJS.Signals) => boolean) {
    super();
    this.#kill = kill;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    return this.#kill(signal);
  }
}

export interface InProcessOptions {
  /** A kill while serving (default: log it and exit this process with `IN_PROCESS_CRASH_CODE`). Tests replace it. */
  crash?: (reason: string) => void;
}

const exitProcess = (reason: string) => {
  process.stderr.write(`${new Date().toISOString()} proxy: ${reason}; exiting\n`);
  process.exit(IN_PROCESS_CRASH_CODE);
};

export function startInProcess(options: InProcessOptions = {}): Child {
  let toServer: ((message: ToProcess, handle: object | undefined) => void) | null = null;
  let serving = false;
  let closeAsked = false;
  const face = new InProcessFace((signal) => {
    if (!face.connected) return false;
    if (serving && !closeAsked) {
      (options.crash ?? exitProcess)(
        `the in-process server was killed (${signal}) and cannot be replaced in this process`,
      );
      return true;
    }
    // Starting or draining: the pool gives up on it. It stops in the background; the pool sees it gone now.
    exited(null, signal);
    server.orphaned();
    return true;
  });
  const exited = (code: number | null, signal: NodeJS.Signals | null) => {
    if (!face.connected) return;
    face.connected = false;
    // After the messages the server sent before it (microtasks run in order).
    queueMicrotask(() => {
      face.exitCode = code;
      face.signalCode = signal;
      face.emit("exit", code, signal);
    });
  };
  const server: Serving = serve({
    send(message: FromProcess, handle?: object) {
      if (!face.connected) return;
      if (message.type === "ready") serving = true;
      queueMicrotask(() => face.emit("message", message, handle));
    },
    connected: () => face.connected,
    onMessage(listener) {
      toServer = listener;
    },
    exit: (code) => exited(code, null),
  });
  return {
    process: face,
    send(message, handle) {
      if (!face.connected || !toServer) return;
      if (message.type === "close") closeAsked = true;
      const deliver = toServer;
      queueMicrotask(() => {
        if (face.connected) deliver(message, handle);
      });
    },
  };
}
