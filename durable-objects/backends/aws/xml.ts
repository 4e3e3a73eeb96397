/**
 * @module
 * Reads the XML answers of the AWS Query APIs inside the Worker (workerd has no DOMParser).
 * Values stay strings (`parseTagValue: false`): ids such as `0123…` must not turn into numbers.
 */
import { XMLParser } from "fast-xml-parser";

export type XmlNode = { [key: string]: XmlValue };
export type XmlValue = string | XmlNode | XmlValue[];

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  parseAttributeValue: false,
  removeNSPrefix: true,
  trimValues: true,
});

export function parseXml(text: string): XmlNode {
  const parsed: unknown = parser.parse(text);
  return parsed && typeof parsed === "object" ? (parsed as XmlNode) : {};
}

const asNode = (v: XmlValue | undefined): XmlNode | null =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as XmlNode) : null;

/** A child element; `null` when absent or empty. */
export function child(node: XmlNode | null | undefined, key: string): XmlNode | null {
  return asNode(node?.[key]);
}

/** Text of a child element; `null` when absent (an empty element is `""`). */
export function text(node: XmlNode | null | undefined, key: string): string | null {
  const v = node?.[key];
  return typeof v === "string" ? v : null;
}

/**
 * The entries of an EC2 `…Set` (`<item>`) or ELBv2/STS list (`<member>`): a single entry parses as
 * an object, several as an array, none as `""`; callers always get an array.
 */
export function list(node: XmlNode | null | undefined, key: string, entry: "item" | "member"): XmlNode[] {
  const container = asNode(node?.[key]);
  const v = container?.[entry];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is XmlNode => asNode(x) !== null);
}

/** Plain string entries of a list (`<SecurityGroups><member>sg-1</member></SecurityGroups>`). */
export function strings(node: XmlNode | null | undefined, key: string, entry: "item" | "member"): string[] {
  const container = asNode(node?.[key]);
  const v = container?.[entry];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === "string");
}
