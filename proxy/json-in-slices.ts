/**
 * @module
 * `JSON.stringify` of an object with one long array (a configuration document's services), in
 * slices with a turn of the event loop between them: a 10 MB document must not stall a process that
 * serves requests for the whole of its serialisation. The text is the same as `JSON.stringify`'s.
 */
import { setImmediate as nextTurn } from "node:timers/promises";

/** `JSON.stringify(value)`, `value[key]` (an array) serialised `slice` items per turn. */
export async function stringifyInSlices(value: object, key: string, slice = 200): Promise<string> {
  const list = (value as Record<string, unknown>)[key];
  if (!Array.isArray(list)) return JSON.stringify(value);
  // The other fields keep their place: the array is swapped for a marker, then the marker for the items.
  const marker = `\u0000slices${Math.random()}\u0000`;
  const shell = JSON.stringify({ ...value, [key]: marker });
  const parts: string[] = [];
  for (let i = 0; i < list.length; i += slice) {
    if (i > 0) await nextTurn();
    const text = JSON.stringify(list.slice(i, i + slice));
    parts.push(text.slice(1, -1));
  }
  const at = shell.indexOf(JSON.stringify(marker));
  return `${shell.slice(0, at)}[${parts.filter((p) => p.length > 0).join(",")}]${shell.slice(at + JSON.stringify(marker).length)}`;
}
