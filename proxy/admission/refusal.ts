/**
 * @module
 * The answers of admission control, made by the gateway: 429 when a service's queue is full, 503
 * when a request waited in it past `queue_timeout`, both with `Retry-After`. Model services (and
 * so the OpenAI entrypoint, which forwards to them) get OpenAI's error shape, which OpenAI's SDKs
 * read and retry on; other services `{"error": message}` like every other gateway answer.
 */
import type { ServerResponse } from "node:http";
import { send } from "../replies.ts";

export type Refusal = "full" | "timeout";

export function replyRefused(
  res: ServerResponse,
  refusal: Refusal,
  service: string,
  openai: boolean,
  retryAfterSeconds: number,
  close: boolean,
): void {
  const status = refusal === "full" ? 429 : 503;
  const message =
    refusal === "full"
      ? `service ${service} is at its concurrency limit and its queue is full`
      : `service ${service} is at its concurrency limit and the request waited too long for a slot`;
  const body = openai
    ? {
        error: {
          message,
          type: refusal === "full" ? "requests" : "server_error",
          param: null,
          code: refusal === "full" ? "queue_full" : "queue_timeout",
        },
      }
    : { error: message };
  send(res, status, "application/json", `${JSON.stringify(body)}\n`, {
    close,
    retryAfterSeconds,
    cors: openai,
  });
}
