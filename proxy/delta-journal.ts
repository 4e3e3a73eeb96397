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
import { CoalescedWrite } from "./coalesced-write.ts";
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

/**
 * A snapshot file with its journal, as its owners keep them (the agent's `config.json`, the standalone
 * proxy's `proxy-state.json`): `write` rewrites the snapshot whole (coalesced: one write in flight,
 * the latest value wins) and then truncates the journal to the version it holds; `writeDelta` appends
 * the delta, and the snapshot is rewritten once the journal outgrew it (`snapshotDue`, the write
 * deferred by `CoalescedWrite.writeLater`'s spacing) or once deltas stopped for `QUIET_SNAPSHOT_MS`.
 */
export class JournaledSnapshot<T> {
  readonly journal: DeltaJournal;
  readonly #writes: CoalescedWrite<T>;
  readonly #onError: (error: Error) => void;
  /** The size of the last snapshot written (0: none yet by this process). */
  #snapshotBytes = 0;
  /** The value of the last delta journaled, written whole once deltas stop; null: nothing waits. */
  #latest: { value: T } | null = null;
  #quiet: NodeJS.Timeout | null = null;

  /**
   * `writeSnapshot` writes `value` whole and says how large it was and which version it holds;
   * `onError` hears of a snapshot written once deltas stopped that failed (nobody awaits it).
   */
  constructor(
    journalPath: string,
    writeSnapshot: (value: T) => Promise<{ bytes: number; version: number }>,
    onError: (error: Error) => void = () => {},
  ) {
    this.journal = new DeltaJournal(journalPath);
    this.#onError = onError;
    this.#writes = new CoalescedWrite<T>(async (value) => {
      const { bytes, version } = await writeSnapshot(value);
      this.#snapshotBytes = bytes;
      await this.journal.truncate(version);
    });
  }

  /** Writes `value` whole; resolves once it (or a later value) is on disk, rejects if that write failed. */
  write(value: T): Promise<void> {
    this.#latest = null;
    this.#stopQuiet();
    return this.#writes.write(value);
  }

  /** Journals `delta` (which made `value`); resolves once appended (and, when due, the snapshot written). */
  writeDelta(delta: ConfigDelta, value: T): Promise<void> {
    const appended = this.journal.append(delta);
    this.#stopQuiet();
    if (snapshotDue(this.journal.bytes, this.#snapshotBytes)) {
      this.#latest = null;
      return Promise.all([appended, this.#writes.writeLater(value)]).then(() => {});
    }
    this.#latest = { value };
    this.#quiet = setTimeout(() => void this.#flush(), QUIET_SNAPSHOT_MS);
    this.#quiet.unref();
    return appended;
  }

  /** Writes what waits for deltas to stop, then resolves once no write or append is in flight or waiting. */
  async idle(): Promise<void> {
    await this.#flush();
    await this.#writes.idle();
    await this.journal.idle();
  }

  #flush(): Promise<void> {
    const latest = this.#latest;
    return latest ? this.write(latest.value).catch(this.#onError) : Promise.resolve();
  }

  #stopQuiet(): void {
    if (this.#quiet) clearTimeout(this.#quiet);
    this.#quiet = null;
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
