import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigDelta } from "../schema/config-delta.ts";
import { fakeDocument, fakeService, prng, randomDelta, serviceName } from "../test/fakes/config-documents.ts";
import { indexDocument } from "./config-merge.ts";
import { DeltaJournal, replayDeltas, snapshotDue } from "./delta-journal.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
const journalIn = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "gp-journal-"));
  dirs.push(dir);
  return new DeltaJournal(path.join(dir, "config.deltas"));
};

describe("delta journal", () => {
  it("replays the deltas after the snapshot to the document they made, whatever the snapshot's version", async () => {
    const journal = await journalIn();
    const rng = prng(7);
    let n = 20;
    const state = indexDocument(fakeDocument(20));
    const snapshots = [state.doc];
    for (let i = 0; i < 12; i++) {
      const delta = randomDelta(state.doc, rng, () => serviceName(n++));
      state.apply(delta);
      snapshots.push(state.doc);
      await journal.append(delta);
    }
    // From any earlier snapshot, the journal leads to the same last version.
    for (const snapshot of [snapshots[0]!, snapshots[5]!, snapshots[12]!])
      expect(await replayDeltas(journal.path, snapshot)).toEqual(state.doc);
    // A snapshot of version 6 on disk: the lines up to it go, the rest still lead from it to the end.
    await journal.truncate(snapshots[5]!.version);
    const kept = (await readFile(journal.path, "utf8")).trim().split("\n");
    expect(kept.map((line) => (JSON.parse(line) as ConfigDelta).version)).toEqual([7, 8, 9, 10, 11, 12, 13]);
    expect(journal.bytes).toBe(kept.join("\n").length + 1);
    expect(await replayDeltas(journal.path, snapshots[5]!)).toEqual(state.doc);
    await journal.truncate(state.doc.version);
    expect(journal.bytes).toBe(0);
    expect(await replayDeltas(journal.path, state.doc)).toBe(state.doc);
  });

  it("stops at a torn line or a gap, on the last version reached", async () => {
    const journal = await journalIn();
    const doc = fakeDocument(3);
    const delta = (base: number): ConfigDelta => ({
      base_version: base,
      version: base + 1,
      services: [fakeService(`new${base}`)],
      removed: [],
    });
    await journal.append(delta(1));
    await journal.append(delta(3)); // a gap: 2 → 3 is missing
    const replayed = await replayDeltas(journal.path, doc);
    expect(replayed.version).toBe(2);
    expect(replayed.services.map((s) => s.name)).toContain("new1");
    await writeFile(journal.path, `${JSON.stringify(delta(1))}\n{"base_version":2,"vers`);
    expect((await replayDeltas(journal.path, doc)).version).toBe(2);
    // No journal at all: the snapshot as it is.
    expect(await replayDeltas(`${journal.path}.none`, doc)).toBe(doc);
  });

  it("is due for a snapshot once it outgrew the last one (a floor for small documents)", () => {
    expect(snapshotDue(10_000, 0)).toBe(false);
    expect(snapshotDue(70_000, 0)).toBe(true);
    expect(snapshotDue(3_000_000, 4_000_000)).toBe(false);
    expect(snapshotDue(4_000_001, 4_000_000)).toBe(true);
  });
});
