/**
 * @module
 * The standalone proxy's control socket (`docs/gateway-host.md`): a unix socket in the state
 * directory (`proxy.sock`, owner-only) carrying one JSON object per line, both ways.
 *
 * - The agent asks (`{id, op, ...}`), the proxy answers (`{id, ok: true, value}` or `{id, ok: false, error}`).
 * - The proxy tells the attached agent (the last connection that said `hello` with `attach`) what
 *   happens (`{event: "log" | "held", ...}`) and asks it for its own metric series
 *   (`{event: "extra-ask", ask}`, answered `{op: "extra", ask, families}`, no id).
 *
 * Both sides live on one host, run as one user, and come from one package; the version in `hello`
 * says whether the proxy is the agent's own build (else the agent hands it over to a new one).
 */

import type { Socket } from "node:net";
import path from "node:path";
import { ConfigRejectedError, ProxyClosedError, ProxyOptionsError, ProxyProcessError } from "../errors.ts";

export const CONTROL_SOCKET = "proxy.sock";
export const PID_FILE = "proxy.pid";
/** The last applied document and certificates, for a proxy that starts again on its own. */
export const STATE_FILE = "proxy-state.json";
export const LOG_FILE = "proxy.log";

export const controlPaths = (stateDir: string) => ({
  socket: path.join(stateDir, CONTROL_SOCKET),
  pid: path.join(stateDir, PID_FILE),
  state: path.join(stateDir, STATE_FILE),
  log: path.join(stateDir, LOG_FILE),
});

/** What `hello` answers. */
export interface ProxyHello {
  version: string;
  pid: number;
  host: string;
  port: number;
  httpsPort: number | null;
  processes: number;
  /** Version of the document served, or null without one. */
  configVersion: number | null;
}

export interface WireError {
  name: string;
  message: string;
  field?: string;
  version?: number | null;
  problems?: readonly string[];
}

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const wire: WireError = { name: error.name, message: error.message };
  if (error instanceof ProxyOptionsError) wire.field = error.field;
  if (error instanceof ConfigRejectedError) {
    wire.version = error.version;
    wire.problems = error.problems;
  }
  return wire;
}

/** The proxy's error again on the agent's side, so `instanceof` checks keep working. */
export function fromWire(wire: WireError): Error {
  switch (wire.name) {
    case "ProxyOptionsError":
      return new ProxyOptionsError(wire.field ?? "unknown", wire.message.replace(`${wire.field}: `, ""));
    case "ConfigRejectedError":
      return new ConfigRejectedError(wire.version ?? null, wire.problems ?? [wire.message]);
    case "ProxyClosedError":
      return new ProxyClosedError();
    default: {
      const error = new ProxyProcessError(wire.message);
      if (wire.name !== "Error") error.name = wire.name;
      return error;
    }
  }
}

/** Calls `onMessage` with each JSON line read from `socket`; a line that is not JSON closes it. */
export function readLines(socket: Socket, onMessage: (message: Record<string, unknown>) => void): void {
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let at = buffered.indexOf("\n");
    while (at >= 0) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      at = buffered.indexOf("\n");
      if (line === "") continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      if (message && typeof message === "object") onMessage(message as Record<string, unknown>);
    }
  });
}

export function writeLine(socket: Socket, message: object): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}
