/**
 * @module
 * Request-body helpers shared by the route modules: JSON parsing and schema validation whose
 * failures are 400s naming the field.
 */
import type { Context } from "hono";
import type * as v from "valibot";
import { parseOrThrow } from "../schema/issues.ts";
import { ApiError } from "./errors.ts";

/** Bodies are small JSON documents; anything bigger is a mistake or an attack. */
const MAX_BODY_BYTES = 1 << 20;

const tooLarge = () => new ApiError(413, "body_too_large", "request body exceeds 1 MiB");

/**
 * The body as text, never holding more than the limit: a declared `Content-Length` over it is
 * refused before a byte is read, and a body without one (chunked), or longer than it said, stops
 * being read at the limit. This runs before authentication on `/agent/register`.
 */
async function readCapped(c: Context): Promise<string> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

export async function readJson<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  const type = c.req.header("content-type") ?? "";
  if (type && !/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", "request bodies must be application/json");
  }
  const text = await readCapped(c);
  let body: unknown;
  try {
    body = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "request body is not valid JSON");
  }
  // parseOrThrow refuses reserved keys and bounds the nesting before anything walks the body.
  return parseOrThrow(schema, body);
}
