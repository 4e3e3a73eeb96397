/**
 * @module
 * Random gateway names for configurations without `name` (dstack generates them too).
 */
const ADJECTIVES = [
  "amber",
  "brave",
  "calm",
  "crisp",
  "eager",
  "fast",
  "gentle",
  "keen",
  "lucid",
  "merry",
  "nimble",
  "quiet",
  "rapid",
  "solid",
  "swift",
  "tidy",
  "vivid",
  "witty",
];
const NOUNS = [
  "badger",
  "cedar",
  "comet",
  "falcon",
  "fjord",
  "heron",
  "lynx",
  "maple",
  "meadow",
  "otter",
  "pine",
  "quartz",
  "raven",
  "river",
  "sparrow",
  "tern",
  "willow",
  "zephyr",
];

const pick = <T>(items: readonly T[]): T => items[crypto.getRandomValues(new Uint32Array(1))[0]! % items.length]!;

export function randomGatewayName(): string {
  const n = crypto.getRandomValues(new Uint32Array(1))[0]! % 100;
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${n}`;
}
