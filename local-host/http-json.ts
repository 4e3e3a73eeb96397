/**
 * @module
 * JSON in and out of `node:http` for the daemon: bounded body reading and `{error: {code, message}}`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { LocalErrorBody } from "../schema/local-host.ts";
import { DaemonHttpError } from "./errors.ts";

/** Larger than any valid create request (user-data is capped at 16 KiB). */
const MAX_BODY_BYTES = 64 * 1024;

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new DaemonHttpError(415, "unsupported_media_type", "expected content-type: application/json");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new DaemonHttpError(413, "payload_too_large", `request body is limited to ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new DaemonHttpError(400, "invalid_json", "request body is not valid JSON");
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body: LocalErrorBody = { error: { code, message } };
  sendJson(res, status, body);
}
