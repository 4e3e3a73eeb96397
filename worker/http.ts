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

export async function readJson<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  const type = c.req.header("content-type") ?? "";
  if (type && !/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", "request bodies must be application/json");
  }
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw new ApiError(413, "body_too_large", "request body exceeds 1 MiB");
  let body: unknown;
  try {
    body = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "request body is not valid JSON");
  }
  return parseOrThrow(schema, body);
}
