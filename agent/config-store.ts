/**
 * @module
 * The last good configuration, `<state-dir>/config.json`: the document the proxy served last, kept so
 * a restarted host serves traffic at once, before (and without) the control plane answering.
 *
 * Writes coalesce (`proxy/coalesced-write.ts`): one in flight, and the documents applied meanwhile
 * collapse into one write of the latest; each is serialised in slices (`proxy/json-in-slices.ts`), so
 * a 10 MB document written after every delta neither piles up writes nor stalls the process.
 *
 * A delta is persisted as one line appended to `<state-dir>/config.deltas` (`proxy/delta-journal.ts`),
 * not as a rewrite of the document: `config.json` is rewritten once the journal has grown as large
 * as it, or once deltas stop for `QUIET_SNAPSHOT_MS` (so it is the whole document in force again
 * soon after a change), and reading applies the journal on top of it.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as v from "valibot";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { JournaledSnapshot, replayDeltas } from "../proxy/delta-journal.ts";
import { stringifyInSlices } from "../proxy/json-in-slices.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import { ConfigDocument } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";

/** What a read found: a document, nothing, or a file that cannot be used (and why). */
export type StoredConfig =
  | { kind: "document"; document: ConfigDocument }
  | { kind: "absent" }
  | { kind: "unusable"; reason: string };

export class ConfigStore {
  readonly file: string;
  /** `file` and the deltas applied since it, in `config.deltas` (`proxy/delta-journal.ts`). */
  readonly #snapshot: JournaledSnapshot<ConfigDocument>;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "config.json");
    this.#snapshot = new JournaledSnapshot(path.join(stateDir, "config.deltas"), async (document) => {
      const text = await stringifyInSlices(document, "services");
      // 0600: it is the gateway's whole routing table, and services' credentials (hashed) travel in it.
      await writeFileAtomic(this.file, `${text}\n`, 0o600);
      return { bytes: text.length, version: document.version };
    });
  }

  async read(): Promise<StoredConfig> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { kind: "absent" };
      return { kind: "unusable", reason: `cannot be read (${code ?? "error"})` };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { kind: "unusable", reason: "is not valid JSON" };
    }
    // Validated again: the file may predate a schema change, and a bad document must not reach the proxy.
    const result = v.safeParse(ConfigDocument, json);
    if (!result.success) {
      return { kind: "unusable", reason: fromValibot(result.issues).map(formatIssue).join("; ") };
    }
    // The deltas applied since, each checked again as it is read.
    return { kind: "document", document: await replayDeltas(this.#snapshot.journal.path, result.output) };
  }

  /** Persists `document`; resolves once it (or a later document) is on disk, rejects if that write failed. */
  write(document: ConfigDocument): Promise<void> {
    return this.#snapshot.write(document);
  }

  /**
   * Persists a delta applied on top of the document persisted (its ACK does not wait): one line
   * appended to the journal; the whole `document` (the merged one) is written only when the journal
   * has grown as large as the last snapshot, or once deltas stop (`proxy/delta-journal.ts`).
   */
  writeDelta(delta: ConfigDelta, document: ConfigDocument): Promise<void> {
    return this.#snapshot.writeDelta(delta, document);
  }

  /** Writes what is waiting for deltas to stop, and resolves once no write is in flight or waiting (tests, shutdown). */
  idle(): Promise<void> {
    return this.#snapshot.idle();
  }
}
