/**
 * @module
 * Reading a few fields of a JSON text from its bytes, without parsing it: a key is found by its
 * quoted name (`"content"`), which inside a JSON string could only appear with its quotes escaped
 * (`\"content\"`), so a match is always a key (or a whole string value, which no `:` follows).
 * Whitespace around the `:` is allowed (Python's `json.dumps` writes `"key": value`).
 */

const QUOTE = 0x22;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** A quoted key, ready for `Buffer.indexOf`. */
export const jsonKey = (name: string): Buffer => Buffer.from(`"${name}"`, "latin1");

/** Index of the value of the key found at `at` (past the `:` and whitespace), or -1 when no `:` follows. */
function valueIndex(buf: Buffer, at: number, keyLength: number): number {
  let i = at + keyLength;
  while (isSpace(buf[i])) i++;
  if (buf[i] !== COLON) return -1;
  i++;
  while (isSpace(buf[i])) i++;
  return i < buf.length ? i : -1;
}

/** The key found at `at` has a string value of at least one character (before `end`). */
export function nonEmptyStringAt(buf: Buffer, at: number, keyLength: number, end = buf.length): boolean {
  const v = valueIndex(buf, at, keyLength);
  return v !== -1 && v + 1 < end && buf[v] === QUOTE && buf[v + 1] !== QUOTE;
}

/** Some `key` of `buf` has a string value of at least one character. */
export function hasNonEmptyString(buf: Buffer, key: Buffer): boolean {
  for (let at = buf.indexOf(key); at !== -1; at = buf.indexOf(key, at + key.length)) {
    const v = valueIndex(buf, at, key.length);
    if (v !== -1 && buf[v] === QUOTE && v + 1 < buf.length && buf[v + 1] !== QUOTE) return true;
  }
  return false;
}

/** Some `key` of `buf` has an array value with at least one element. */
export function hasNonEmptyArray(buf: Buffer, key: Buffer): boolean {
  for (let at = buf.indexOf(key); at !== -1; at = buf.indexOf(key, at + key.length)) {
    const v = valueIndex(buf, at, key.length);
    if (v === -1 || buf[v] !== OPEN_BRACKET) continue;
    let i = v + 1;
    while (isSpace(buf[i])) i++;
    if (i < buf.length && buf[i] !== CLOSE_BRACKET) return true;
  }
  return false;
}

/** Some `key` of `buf` has an object value (not `null`). */
export function hasObject(buf: Buffer, key: Buffer): boolean {
  for (let at = buf.indexOf(key); at !== -1; at = buf.indexOf(key, at + key.length)) {
    const v = valueIndex(buf, at, key.length);
    if (v !== -1 && buf[v] === OPEN_BRACE) return true;
  }
  return false;
}

/**
 * The whole number after the key found at `at`, or null: no `:`, not a number, or a number that
 * reaches `end` (it may go on past what was seen). At most 15 digits.
 */
export function numberAt(buf: Buffer, at: number, keyLength: number, end = buf.length): number | null {
  const v = valueIndex(buf, at, keyLength);
  if (v === -1) return null;
  let n = 0;
  let i = v;
  for (; i < end && i - v <= 15; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === v || i >= end || i - v > 15) return null;
  return n;
}

/** The whole number of the last `key` in `buf` (usage and SGLang's `meta_info` come last), or null. */
export function lastNumber(buf: Buffer, key: Buffer): number | null {
  const at = buf.lastIndexOf(key);
  return at === -1 ? null : numberAt(buf, at, key.length);
}
