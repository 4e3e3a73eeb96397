/**
 * @module
 * `usage: include` of a service: the gateway asks for token counts the client did not ask for, so
 * that streams are measured exactly rather than estimated. For a streamed chat or completions
 * request (`"stream": true`) without `stream_options`, `"stream_options": {"include_usage": true}` is
 * added to the body (OpenAI's option, honoured by vLLM and SGLang: one more event before
 * `data: [DONE]`, `choices: []` and the request's `usage`); the meter then withholds that event from
 * the client (`sse-meter.ts`), who sees exactly what it asked for.
 *
 * Left alone: anything but `stream: true` (vLLM refuses `stream_options` on other requests with a
 * 400), and a request that has `stream_options` at all: the client chose (vLLM reads `{}` as
 * `include_usage: true`, other servers as false; adding the field would change what it gets).
 * The body is only touched when it was read whole; the added text goes right after the opening
 * brace, so every byte the client sent stays as it was.
 */

const STREAM_KEY = Buffer.from('"stream"', "latin1");
const INSERTED = Buffer.from('"stream_options":{"include_usage":true},', "latin1");

/** Whether the gateway may add `include_usage` to a request for `path` (query included). */
export function usagePath(method: string | undefined, path: string): boolean {
  if (method !== "POST") return false;
  const q = path.indexOf("?");
  const pathname = q === -1 ? path : path.slice(0, q);
  return pathname.endsWith("/completions");
}

/** The body with `include_usage` asked for, or null when it is left as it is. */
export function includeUsage(body: Buffer): Buffer | null {
  // Most bodies of a stream-less request are refused here without parsing.
  if (body.indexOf(STREAM_KEY) === -1) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  const request = parsed as { stream?: unknown; stream_options?: unknown };
  if (request.stream !== true || "stream_options" in request) return null;
  let open = 0;
  while (open < body.length && body[open] !== 0x7b) open++;
  return Buffer.concat([body.subarray(0, open + 1), INSERTED, body.subarray(open + 1)]);
}
