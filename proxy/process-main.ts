/**
 * @module
 * Entry point of a proxy child process (started by `process-pool.ts` through `process-fork.ts`: this
 * file bundled to JavaScript, or under tsx where the bundle cannot be written): what it does is
 * `process-serve.ts`, over Node IPC with the parent. It exits when told to close or when the parent
 * goes away.
 */

import type { FromProcess, ToProcess } from "./process-protocol.ts";
import { serve } from "./process-serve.ts";

const serving = serve({
  // biome-ignore lint/suspicious/noExplicitAny: Node's send accepts a listening handle; its typing does not say so.
  send: (message: FromProcess, handle?: object) => process.send?.(message, handle as any),
  connected: () => process.connected && typeof process.send === "function",
  onMessage: (listener) =>
    process.on("message", (message, handle) => listener(message as ToProcess, handle as object | undefined)),
  exit: (code) => process.exit(code),
});

// An orphaned child would keep the port: follow the parent out.
process.on("disconnect", () => serving.orphaned());
// A stop signal sent to the whole process group (the local host daemon, a terminal's Ctrl-C) is
// the parent's to act on: it drains its children over IPC. Dying here would cut in-flight
// requests and make the parent restart the child while it shuts down.
process.on("SIGTERM", () => {});
process.on("SIGINT", () => {});
