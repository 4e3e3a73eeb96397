/**
 * @module
 * A whole document persisted as a snapshot plus a journal of the deltas applied since: a delta costs
 * one appended line (O(changed)), not a rewrite of the 10 MB document (O(services)). The owner
 * (`agent/config-store.ts`, the standalone proxy's state in `control/standalone.ts`) writes a new
 * snapshot when the journal has grown as large as it (`snapshotDue`: the rewrite is then paid once per
 * snapshot's worth of deltas, O(changed) per delta amortized) or once deltas stopped for
 * `QUIET_SNAPSHOT_MS`, and tells the journal which version the snapshot holds (`truncate`): the
 * deltas up to it go, those after it stay.
 *
 * Reading (`replayDeltas`) applies, on top of the snapshot, each line after its version whose base is
 * the version reached so far, in order; a line that is torn (a crash mid-append), invalid or not on
 * top of that version ends the replay: the host then starts on the last version it reached, and the
 * control plane brings it up to date on connect, as after any crash.
 */
import { appendFile, readFile, rename, rm, writeFile } from "node:fs/promises";
import * as v from "valibot";
import { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { indexDocument } from "./config-merge.ts";

/** Below this a journal is never folded into a snapshot (a small document's deltas would rewrite it each). */
const MIN_JOURNAL_BYTES = 64 * 1024;

/**
 * Once deltas stop for this long the owner writes a snapshot anyway, so the snapshot file alone is
 * the document in force again (for whoever reads it whole): at most one O(services) write per quiet
 * period, however the deltas come.
 */
export const QUIET_SNAPSHOT_MS = 2_000;

/** Whether a new snapshot is due: the journal outgrew the last snapshot (or the floor). */
export const snapshotDue = (journalBytes: number, snapshotBytes: number): boolean =>
  journalBytes > Math.max(snapshotBytes, MIN_JOURNAL_BYTES);

export class DeltaJournal {
  readonly path: string;
  /** Bytes appended since the file was last truncated (by this process; a journal found at start counts from 0). */
  #bytes = 0;
  /** Appends and truncations, one after another. */
  #tail: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends one delta (a line of JSON); resolves once written, rejects if that failed. */
  append(delta: ConfigDelta): Promise<void> {
    const line = `${JSON.stringify(delta)}\n`;
    this.#bytes += line.length;
    return this.#run(() => appendFile(this.path, line, { mode: 0o600 }));
  }

  /** A snapshot of `version` is on disk: the deltas up to it go (those appended after it stay). */
  truncate(version: number): Promise<void> {
    return this.#run(async () => {
      const text = await readFile(this.path, "utf8").catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return "";
        throw error;
      });
      const kept = text.split("\n").filter((line) => line !== "" && versionOf(line) > version);
      this.#bytes = kept.reduce((n, line) => n + line.length + 1, 0);
      if (kept.length === 0) return rm(this.path, { force: true });
      const temp = `${this.path}.${process.pid}.tmp`;
      await writeFile(temp, `${kept.join("\n")}\n`, { mode: 0o600 });
      await rename(temp, this.path);
    });
  }

  /** Resolves once every append and truncation so far ended (never rejects). */
  idle(): Promise<void> {
    return this.#tail;
  }

  #run(op: () => Promise<void>): Promise<void> {
    const done = this.#tail.then(op);
    this.#tail = done.catch(() => {});
    return done;
  }
}

/** A line's `version` (a torn line: 0, never kept). */
function versionOf(line: string): number {
  try {
    const version = (JSON.parse(line) as { version?: unknown }).version;
    return typeof version === "number" ? version : 0;
  } catch {
    return 0;
  }
}

/**
 * `document` with the journal at `path` applied (the module's comment); `document` itself when there
 * is nothing to apply, or when it is not a document (the caller's validation then refuses it).
 */
export async function replayDeltas(path: string, document: ConfigDocument): Promise<ConfigDocument> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return document;
  }
  if (!Array.isArray((document as { services?: unknown }).services)) return document;
  const state = indexDocument(document);
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      break;
    }
    const parsed = v.safeParse(ConfigDelta, json);
    if (!parsed.success) break;
    const delta = parsed.output;
    if (delta.version <= state.version) continue;
    if (delta.base_version !== state.version) break;
    state.apply(delta);
  }
  return state.doc;
}
