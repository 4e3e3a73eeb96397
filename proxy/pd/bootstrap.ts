/**
 * @module
 * The bootstrap fields SGLang's PD routers inject into a request (SMG `pd_router.rs`
 * `inject_bootstrap_into_value`, SGLang `mini_lb.py`): `bootstrap_host` (the prefill worker's URL
 * host), `bootstrap_port` (its bootstrap port, or null) and `bootstrap_room` (a random integer in
 * [0, 2^63 − 1]) — one of each per item, as lists, for a batch: `/generate` with a list `text` or
 * nested `input_ids`, chat with `n > 1`, completions with a list of string prompts. The same body goes
 * to both workers.
 *
 * The client's bytes are kept as sent and the fields appended before the closing brace (a 63-bit
 * room does not fit a JS number, and re-serializing would round the client's own large integers);
 * only a body that already carries one of the fields is re-serialized without them first (SMG
 * overwrites them).
 */
import { randomBytes } from "node:crypto";

const MASK_63 = (1n << 63n) - 1n;

/** A random room in [0, 2^63 − 1] as decimal digits (Python's `random.randint(0, 2**63-1)`). */
export function randomRoom(): string {
  return (randomBytes(8).readBigUInt64BE() & MASK_63).toString();
}

/** Items in a request as SGLang counts them for PD; null: a single request. */
export function pdBatchSize(path: string, body: Record<string, unknown>): number | null {
  const q = path.indexOf("?");
  const bare = q === -1 ? path : path.slice(0, q);
  if (bare === "/generate") {
    if (Array.isArray(body.text)) return body.text.length;
    const ids = body.input_ids;
    return Array.isArray(ids) && ids.length > 0 && Array.isArray(ids[0]) ? ids.length : null;
  }
  if (bare === "/v1/chat/completions") return typeof body.n === "number" && body.n > 1 ? body.n : null;
  if (bare === "/v1/completions") {
    const p = body.prompt;
    return Array.isArray(p) && p.length > 0 && typeof p[0] === "string" ? p.length : null;
  }
  return null;
}

export interface Bootstrap {
  host: string;
  port: number | null;
}

const FIELDS = ["bootstrap_host", "bootstrap_port", "bootstrap_room"] as const;

/**
 * The body both workers get: `raw` (a JSON object, parsed as `body`) with the prefill worker's
 * bootstrap address and fresh rooms. `rooms` (for tests) draws each room.
 */
export function withBootstrap(
  raw: Buffer,
  body: Record<string, unknown>,
  path: string,
  prefill: Bootstrap,
  rooms: () => string = randomRoom,
): Buffer {
  const n = pdBatchSize(path, body);
  const host = JSON.stringify(prefill.host);
  const port = prefill.port === null ? "null" : String(prefill.port);
  const fields =
    n === null
      ? `"bootstrap_host":${host},"bootstrap_port":${port},"bootstrap_room":${rooms()}`
      : `"bootstrap_host":[${Array(n).fill(host).join(",")}],"bootstrap_port":[${Array(n).fill(port).join(",")}],` +
        `"bootstrap_room":[${Array.from({ length: n }, rooms).join(",")}]`;
  let text: string;
  if (FIELDS.some((f) => Object.hasOwn(body, f))) {
    const rest = { ...body };
    for (const f of FIELDS) delete rest[f];
    text = JSON.stringify(rest);
  } else text = raw.toString("utf8").trimEnd();
  const close = text.lastIndexOf("}");
  const empty = /^\{\s*$/.test(text.slice(0, close));
  return Buffer.from(`${text.slice(0, close)}${empty ? "" : ","}${fields}}`, "utf8");
}
