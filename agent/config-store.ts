/**
 * @module
 * The last good configuration, `<state-dir>/config.json`: the document the proxy served last, kept so
 * a restarted host serves traffic at once, before (and without) the control plane answering.
 *
 * Writes coalesce (`proxy/coalesced-write.ts`): one in flight, and the documents applied meanwhile
 * collapse into one write of the latest; each is serialised in slices (`proxy/json-in-slices.ts`), so
 * a 10 MB document written after every delta neither piles up writes nor stalls the process. A
 * delta's write waits a spacing after the last write (`writeLater`), so a stream of deltas spends at
 * most a tenth of the time writing.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as v from "valibot";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { CoalescedWrite } from "../proxy/coalesced-write.ts";
import { stringifyInSlices } from "../proxy/json-in-slices.ts";
import { ConfigDocument } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";

/** What a read found: a document, nothing, or a file that cannot be used (and why). */
export type StoredConfig =
  | { kind: "document"; document: ConfigDocument }
  | { kind: "absent" }
  | { kind: "unusable"; reason: string };

export class ConfigStore {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "config.json");
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
    return { kind: "document", document: result.output };
  }

  readonly #writes = new CoalescedWrite<ConfigDocument>(async (document) => {
    const text = await stringifyInSlices(document, "services");
    // 0600: it is the gateway's whole routing table, and services' credentials (hashed) travel in it.
    await writeFileAtomic(this.file, `${text}\n`, 0o600);
  });

  /** Persists `document`; resolves once it (or a later document) is on disk, rejects if that write failed. */
  write(document: ConfigDocument): Promise<void> {
    return this.#writes.write(document);
  }

  /**
   * Persists a delta's merged `document` (its ACK does not wait): the write is spaced after the last
   * one (`CoalescedWrite.writeLater`), so a stream of deltas shares writes of the latest.
   */
  writeLater(document: ConfigDocument): Promise<void> {
    return this.#writes.writeLater(document);
  }

  /** Resolves once no write is in flight or waiting (tests, shutdown). */
  idle(): Promise<void> {
    return this.#writes.idle();
  }
}
