/**
 * @module
 * Responses the proxy produces itself (unknown host, no replica, too large, replica unreachable…):
 * short bodies, JSON for service traffic and plain text for hosts nobody serves, never internals.
 * The raw variant answers on a bare socket, for upgrade requests that never got a ServerResponse.
 * Every one carries the request's `X-Request-Id` (tagged on the response or socket by `server.ts`).
 */
import type { ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { taggedRequestId } from "./observe/ids.ts";
import { observation } from "./observe/observation.ts";

export interface ReplyOptions {
  /** Close the connection afterwards (the client may still be sending a body we refuse to read). */
  close?: boolean;
  retryAfterSeconds?: number;
  /** Add `Access-Control-Allow-Origin: *` (model services and the entrypoint), so browsers can read it. */
  cors?: boolean;
  /** Ask for credentials (401): `WWW-Authenticate: Bearer realm="gateplane"`. */
  challenge?: boolean;
}

export function send(res: ServerResponse, status: number, type: string, body: string, options: ReplyOptions): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const headers = [
    "content-type",
    type,
    "content-length",
    String(Buffer.byteLength(body)),
    "cache-control",
    "no-store",
  ];
  if (options.cors) headers.push("access-control-allow-origin", "*");
  if (options.retryAfterSeconds !== undefined) headers.push("retry-after", String(options.retryAfterSeconds));
  if (options.challenge) headers.push("www-authenticate", 'Bearer realm="gateplane"');
  const requestId = taggedRequestId(res);
  if (requestId !== undefined) headers.push("x-request-id", requestId);
  if (options.close) {
    headers.push("connection", "close");
    res.shouldKeepAlive = false;
  }
  res.writeHead(status, headers);
  const length = Buffer.byteLength(body);
  const observed = observation(res);
  if (observed) observed.bytesOut = length;
  res.end(body);
}

/** `{"error": message}` with `status`. */
export function replyJson(res: ServerResponse, status: number, message: string, options: ReplyOptions = {}): void {
  send(res, status, "application/json", `${JSON.stringify({ error: message })}\n`, options);
}

export function replyText(res: ServerResponse, status: number, message: string, options: ReplyOptions = {}): void {
  send(res, status, "text/plain; charset=utf-8", `${message}\n`, options);
}

/** A whole HTTP/1.1 response written on a raw socket, which is then closed. */
export function replyRaw(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  const body = `${JSON.stringify({ error: message })}\n`;
  const requestId = taggedRequestId(socket);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\n` +
      (requestId === undefined ? "" : `x-request-id: ${requestId}\r\n`) +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
