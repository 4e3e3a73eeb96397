import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { indexDocument } from "../proxy/config-merge.ts";
import { fakeDocument, fakeService } from "../test/fakes/config-documents.ts";
import { ConfigStore } from "./config-store.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe("config store and deltas", () => {
  it("journals a delta as a line, reads the document it made, and writes it whole once idle", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "gp-store-"));
    dirs.push(dir);
    const store = new ConfigStore(dir);
    const first = fakeDocument(5);
    await store.write(first);
    const state = indexDocument(first);
    for (let v = 1; v <= 3; v++) {
      const delta = {
        base_version: v,
        version: v + 1,
        services: [fakeService(`s0000${v}`, { replicas: 3 })],
        removed: [],
      };
      state.apply(delta);
      await store.writeDelta(delta, state.doc);
    }
    // Deltas are lines of the journal: the snapshot is still the first document...
    expect(JSON.parse(await readFile(store.file, "utf8"))).toEqual(first);
    expect((await readFile(path.join(dir, "config.deltas"), "utf8")).trim().split("\n")).toHaveLength(3);
    // ...and a host starting now (a crash: no idle) reads the document the deltas made.
    expect(await new ConfigStore(dir).read()).toEqual({ kind: "document", document: state.doc });
    // Idle (deltas stopped, or shutting down): the snapshot is the whole document again, the journal empty.
    await store.idle();
    expect(JSON.parse(await readFile(store.file, "utf8"))).toEqual(state.doc);
    await expect(readFile(path.join(dir, "config.deltas"), "utf8")).rejects.toThrow("ENOENT");
  });
});
