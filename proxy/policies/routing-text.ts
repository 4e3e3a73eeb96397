/**
 * @module
 * The text cache_aware routes on, as SGLang ≥ 0.2 extracts it (`extract_text_for_routing`), chosen by
 * the body's shape rather than its path so any prefix (`/v1`, `/`, `/generate`) works:
 * - `messages` (chat): every message's text in order, joined by one space — string content, or the
 *   `text` parts of a parts array joined by a space; an assistant's `reasoning_content` follows its
 *   content. No roles, no tools.
 * - `prompt` (completions): the string, or string items joined by a space.
 * - `text` / `input_ids` (`/generate`): the text, else the ids in decimal joined by a space (batches
 *   flattened).
 * Anything else is "" (a miss: the least-loaded replica).
 */

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const parts: string[] = [];
  for (const part of content) {
    if (isObject(part) && part.type === "text" && typeof part.text === "string") parts.push(part.text);
  }
  return parts.join(" ");
}

function messageText(message: unknown): string {
  if (!isObject(message)) return "";
  const content = contentText(message.content);
  const reasoning = typeof message.reasoning_content === "string" ? message.reasoning_content : "";
  return reasoning === "" ? content : `${content} ${reasoning}`.trim();
}

function flattenIds(ids: unknown, out: string[]): void {
  if (typeof ids === "number") out.push(String(ids));
  else if (Array.isArray(ids)) for (const id of ids) flattenIds(id, out);
}

export function routingText(body: unknown): string {
  if (!isObject(body)) return "";
  if (Array.isArray(body.messages)) return body.messages.map(messageText).join(" ");
  const prompt = body.prompt;
  if (typeof prompt === "string") return prompt;
  if (Array.isArray(prompt)) return prompt.filter((p) => typeof p === "string").join(" ");
  if (typeof body.text === "string") return body.text;
  if (Array.isArray(body.text)) return body.text.filter((p) => typeof p === "string").join(" ");
  if (body.input_ids !== undefined) {
    const ids: string[] = [];
    flattenIds(body.input_ids, ids);
    return ids.join(" ");
  }
  return "";
}

/** The routing text of a request body, or "" when it is not JSON. */
export function routingTextOf(body: Buffer): string {
  if (body.length === 0) return "";
  try {
    return routingText(JSON.parse(body.toString("utf8")));
  } catch {
    return "";
  }
}

/**
 * How much of the routing text cache_aware looks at: the first 32 K code points (~8 K tokens). A
 * prefix that long decides which replica's cache holds a prompt as well as the whole would, and
 * the cap bounds what one decision costs — the text crosses IPC to the parent for every request
 * and is walked and inserted into the tree there. Longer prompts match (and are stored) on this
 * prefix, so their match rate is over it too.
 */
export const ROUTING_TEXT_CAP = 32 * 1024;

/** `text` cut to its first `ROUTING_TEXT_CAP` code points (never inside a surrogate pair). */
export function capRoutingText(text: string, cap = ROUTING_TEXT_CAP): string {
  // At most `cap` UTF-16 units is at most `cap` code points.
  if (text.length <= cap) return text;
  let units = 0;
  for (let points = 0; points < cap && units < text.length; points++) {
    const c = text.charCodeAt(units);
    const pair = c >= 0xd800 && c <= 0xdbff && units + 1 < text.length;
    units += pair && (text.charCodeAt(units + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return text.slice(0, units);
}
