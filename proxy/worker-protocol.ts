/**
 * @module
 * Messages between the proxy's parent process and its workers (Node IPC, JSON). The listening
 * socket travels as the message's handle where a message says so.
 */
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ServerSettings } from "./server.ts";
import type { RawServiceStats } from "./stats.ts";

export type ToWorker =
  | {
      type: "init";
      settings: ServerSettings;
      document: ConfigDocument | null;
      /** Bind this address (cluster mode, or the first worker in handle mode), or use the attached handle. */
      listen: { host: string; port: number } | "handle";
      /** Send the listening handle back with `ready` (the first worker in handle mode). */
      shareHandle: boolean;
    }
  | { type: "apply"; id: number; document: ConfigDocument }
  | { type: "stats"; id: number }
  | { type: "close" };

export type FromWorker =
  /** The worker listens for messages (anything sent earlier may be lost): send `init`. */
  | { type: "started" }
  | { type: "ready"; port: number }
  | { type: "failed"; error: string }
  | { type: "applied"; id: number; version: number }
  | { type: "apply-failed"; id: number; error: string }
  | { type: "stats"; id: number; stats: RawServiceStats[] }
  | { type: "log"; line: string }
  /** A request is held for `service`, which is scaled to zero (rate-limited per service by the worker). */
  | { type: "held"; service: string };
