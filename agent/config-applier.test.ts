import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigRejectedError } from "../proxy/index.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { diffDocuments, fakeDocument, fakeService } from "../test/fakes/config-documents.ts";
import { ConfigApplier, type ConfigApplierOptions } from "./config-applier.ts";
import { ConfigStore } from "./config-store.ts";
import type { Logger } from "./log.ts";

const log: Logger = { info: () => {}, warn: () => {}, error: () => {} };
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** An applier on `initial` whose proxy records what it is handed; writes go nowhere unless `store` says. */
function applier(initial: ConfigDocument | null, overrides: Partial<ConfigApplierOptions> = {}) {
  const applied: ConfigDocument[] = [];
  const deltas: ConfigDelta[] = [];
  const a = new ConfigApplier({
    apply: async (doc) => {
      applied.push(doc);
    },
    applyDelta: async (delta) => {
      deltas.push(delta);
    },
    store: { file: "config.json", write: async () => {} } as unknown as ConfigStore,
    initial,
    log,
    ...overrides,
  });
  return { a, applied, deltas };
}

const head = (doc: ConfigDocument) => {
  const { version: _v, services: _s, ...rest } = doc;
  return rest;
};

describe("a delta offered to the applier", () => {
  it("is a gap, not applied, unless it is on top of the applied version", async () => {
    const { a, deltas } = applier(fakeDocument(3));
    expect(await a.offerDelta({ base_version: 2, version: 3, services: [], removed: [] }, "test")).toEqual({
      kind: "gap",
      version: 3,
      applied: 1,
    });
    const { a: empty } = applier(null);
    expect(await empty.offerDelta({ base_version: 1, version: 2, services: [], removed: [] }, "test")).toEqual({
      kind: "gap",
      version: 2,
      applied: null,
    });
    // The applied version itself: re-ACKed, as a document of it is.
    expect((await a.offerDelta({ base_version: 1, version: 1, services: [], removed: [] }, "t")).kind).toBe("current");
    expect(deltas).toEqual([]);
    expect(a.version).toBe(1);
  });

  it("applies deltas that queued behind an apply as one, the last one answered, the others stale", async () => {
    const doc = fakeDocument(3);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let started: () => void = () => {};
    const applying = new Promise<void>((r) => (started = r));
    const deltas: ConfigDelta[] = [];
    const { a } = applier(doc, {
      applyDelta: async (delta) => {
        deltas.push(delta);
        if (deltas.length === 1) {
          started();
          await gate;
        }
      },
    });
    const d = (base: number, services: ConfigDocument["services"], removed: string[] = []) => ({
      base_version: base,
      version: base + 1,
      services,
      removed,
    });
    const first = a.offerDelta(d(1, [fakeService("new-1")]), "t");
    await applying;
    // Offered while the first is being applied: these three are composed and applied at once.
    const queued = [
      a.offerDelta(d(2, [fakeService("new-2")]), "t"),
      a.offerDelta(d(3, [], ["new-1"]), "t"),
      a.offerDelta(d(4, [fakeService("new-3", { replicas: 3 })]), "t"),
    ];
    release();
    expect((await first).kind).toBe("applied");
    const outcomes = await Promise.all(queued);
    expect(outcomes.map((o) => o.kind)).toEqual(["stale", "stale", "applied"]);
    expect(outcomes[2]).toMatchObject({ version: 5 });
    expect(deltas.map((x) => [x.base_version, x.version])).toEqual([
      [1, 2],
      [2, 5],
    ]);
    expect(deltas[1]!.services.map((x) => x.name)).toEqual(["new-2", "new-3"]);
    expect(deltas[1]!.removed).toEqual(["new-1"]);
    expect(a.version).toBe(5);
  });

  it("NACKs a bad envelope or head, changing nothing", async () => {
    const doc = fakeDocument(3);
    const { a, deltas } = applier(doc);
    const badHead = { ...head(doc), entrypoint: { host: "Not a host" } };
    const outcome = await a.offerDelta({ base_version: 1, version: 2, services: [], removed: [], head: badHead }, "t");
    expect(outcome).toMatchObject({ kind: "rejected", version: 2, error: expect.stringContaining("entrypoint.host") });
    const noRemoved = await a.offerDelta({ base_version: 1, version: 2, services: [] }, "t");
    expect(noRemoved).toMatchObject({ kind: "rejected", error: expect.stringContaining("removed") });
    expect(deltas).toEqual([]);
    expect(a.version).toBe(1);
  });

  it("keeps a bad service at its last good state, leaves a bad new one out, and lists both in the ACK", async () => {
    const doc = fakeDocument(3);
    const { a, deltas } = applier(doc);
    const bad = { ...doc.services[0]!, read_timeout_ms: 0 };
    const badNew = { ...fakeService("zz-new"), replicas: [{ id: "x", url: "ftp://nope" }] };
    const good = fakeService("s00001", { replicas: 3 });
    const outcome = await a.offerDelta(
      { base_version: 1, version: 2, services: [bad, good, badNew], removed: [] },
      "t",
    );
    expect(outcome).toEqual({
      kind: "applied",
      version: 2,
      rejected: [
        { service: "s00000", error: expect.stringContaining("services[0].read_timeout_ms"), kept: true },
        { service: "zz-new", error: expect.stringContaining("services[2].replicas[0].url"), kept: false },
      ],
    });
    expect(deltas).toEqual([{ base_version: 1, version: 2, services: [good], removed: [] }]);
    expect(a.rejectedServices.map((r) => r.service)).toEqual(["s00000", "zz-new"]);
    // A later delta that does not touch s00000 keeps its refusal; one that fixes it ends it.
    const next = await a.offerDelta({ base_version: 2, version: 3, services: [], removed: ["s00002"] }, "t");
    expect(next).toMatchObject({ kind: "applied", rejected: [{ service: "s00000" }, { service: "zz-new" }] });
    const fixed = await a.offerDelta({ base_version: 3, version: 4, services: [doc.services[0]!], removed: [] }, "t");
    expect(fixed).toMatchObject({ kind: "applied", rejected: [{ service: "zz-new" }] });
  });

  it("NACKs what the proxy refuses", async () => {
    const { a } = applier(fakeDocument(2), {
      applyDelta: async () => {
        throw new ConfigRejectedError(2, ["services[0].host: no"]);
      },
    });
    const outcome = await a.offerDelta(
      { base_version: 1, version: 2, services: [fakeService("s00000")], removed: [] },
      "t",
    );
    expect(outcome).toMatchObject({
      kind: "rejected",
      version: 2,
      error: expect.stringContaining("services[0].host: no"),
    });
    expect(a.version).toBe(1);
  });

  it("ACKs without waiting for the write, and the writes coalesce into the latest merged document", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "gp-applier-"));
    dirs.push(dir);
    const store = new ConfigStore(dir);
    const docs = [fakeDocument(20)];
    for (let v = 2; v <= 12; v++) {
      const prev = docs.at(-1)!;
      const services = prev.services.map((s, i) => (i === v ? fakeService(s.name, { replicas: 3 }) : s));
      docs.push({ ...prev, version: v, services });
    }
    const { a } = applier(docs[0]!, { store });
    // One after another, each ACKed as soon as it is applied (offered all at once they would be composed).
    const outcomes = [];
    for (const [i, doc] of docs.slice(1).entries())
      outcomes.push(await a.offerDelta(diffDocuments(docs[i]!, doc), "t"));
    expect(outcomes.map((o) => o.kind)).toEqual(Array(11).fill("applied"));
    await store.idle();
    expect(JSON.parse(await readFile(store.file, "utf8"))).toEqual(docs.at(-1));
  });

  it("does not hold the ACK on a write that does not end", async () => {
    const never = { file: "config.json", write: () => new Promise<void>(() => {}) } as unknown as ConfigStore;
    const doc = fakeDocument(2);
    const { a } = applier(doc, { store: never });
    const outcome = await a.offerDelta(
      { base_version: 1, version: 2, services: [fakeService("s00001", { replicas: 1 })], removed: [] },
      "t",
    );
    expect(outcome.kind).toBe("applied");
  });
});
