/**
 * Checks the links of the README and the manual: every relative link names a file or folder that
 * exists, and every `#anchor` names a heading of its target page, as GitHub slugs headings. Links
 * inside code (fenced blocks, inline code) are not links; `http(s):` and `mailto:` are not checked
 * (no network in CI). The repository paths the pages name in code (`proxy/rate-limit.ts`, the test
 * files of a `npx vitest run` line) must exist too, so a file moved without its docs is caught.
 * Reads a few files and nothing else, so `npm test` runs it.
 *
 *   npx tsx scripts/check-links.ts            # prints each broken link as file:line, exits 1 if any
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** The pages checked: the front door, the manual, and the READMEs of the parts the manual links to. */
function pages(): string[] {
  const docs = readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => join(root, "docs", name));
  const readmes = ["README.md", "bench/README.md", "agent/README.md", "proxy/README.md", "test/README.md"];
  return [...readmes.map((name) => join(root, name)), ...docs].filter((file) => existsSync(file));
}

/** A page's lines with fenced code blanked out (kept as empty lines so line numbers stay right). */
function proseLines(text: string): string[] {
  let fence: string | null = null;
  return text.split("\n").map((line) => {
    const marker = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (fence !== null) {
      if (marker?.startsWith(fence)) fence = null;
      return "";
    }
    if (marker !== undefined) {
      fence = marker;
      return "";
    }
    return line;
  });
}

/** GitHub's heading ids: lower case, punctuation dropped (not `-` or `_`), spaces to `-`, repeats numbered. */
function headingIds(text: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const plain = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    ids.add(count === 0 ? base : `${base}-${count}`);
  }
  return ids;
}

/** Markdown links `[text](target)` of one line, code spans removed first. */
function linksOf(line: string): string[] {
  const prose = line.replace(/`+[^`]*`+/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] as string);
}

const idsByFile = new Map<string, Set<string>>();
function idsOf(file: string): Set<string> {
  let ids = idsByFile.get(file);
  if (!ids) {
    ids = headingIds(readFileSync(file, "utf8"));
    idsByFile.set(file, ids);
  }
  return ids;
}

/** What is wrong with `target` linked from `page`, or null. */
function problem(page: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null;
  const hash = target.indexOf("#");
  const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
  const file = pathPart === "" ? page : resolve(dirname(page), pathPart);
  if (!existsSync(file)) return `${target}: no such file ${relative(root, file)}`;
  if (anchor === null) return null;
  if (!file.endsWith(".md") || statSync(file).isDirectory())
    return `${target}: an anchor on a page that is not markdown`;
  if (!idsOf(file).has(anchor)) return `${target}: no heading #${anchor} in ${relative(root, file)}`;
  return null;
}

/** Top-level folders whose files the pages name in code; a name there must exist. */
const TREE =
  /^(?:agent|bench|bin|cli|core|docs|durable-objects|examples|local-host|migrations|proxy|schema|scripts|test|worker)\//;

/** Repository paths named on a line outside links (links are checked above): `proxy/x.ts`, not `/proxy/services/…`. */
function pathsOf(line: string): string[] {
  const withoutLinks = line.replace(/\[[^\]]*\]\([^)]*\)/g, " ");
  const words = withoutLinks
    .split(/[\s`'"(),;:=[\]]+/)
    .map((word) => word.replace(/[.]+$/, ""))
    .filter((word) => TREE.test(word) && /\.[a-z]+$/.test(word) && !/[{}*<>…]/.test(word));
  return [...new Set(words)];
}

const problems: string[] = [];
let checked = 0;
for (const page of pages()) {
  const text = readFileSync(page, "utf8");
  proseLines(text).forEach((line, index) => {
    for (const target of linksOf(line)) {
      checked += 1;
      const wrong = problem(page, target);
      if (wrong) problems.push(`${relative(root, page)}:${index + 1}: ${wrong}`);
    }
  });
  text.split("\n").forEach((line, index) => {
    for (const path of pathsOf(line)) {
      checked += 1;
      if (!existsSync(join(root, path))) problems.push(`${relative(root, page)}:${index + 1}: ${path}: no such file`);
    }
  });
}
for (const line of problems) console.error(line);
console.log(`check-links: ${checked} links and paths, ${problems.length} broken`);
process.exit(problems.length === 0 ? 0 : 1);
