import { describe, expect, it } from "vitest";
import { composeDeltas } from "./compose-deltas.ts";

const s = (name: string, url = "http://a") => ({ name, url });

describe("composeDeltas", () => {
  it("composes consecutive deltas: the last entry wins, removals and re-additions cancel, the newest head wins", () => {
    const a = { base_version: 4, version: 5, services: [s("b"), s("c")], removed: ["x"], head: { n: 1 } };
    const b = { base_version: 5, version: 6, services: [s("b", "http://b2"), s("x")], removed: ["c", "y"] };
    expect(composeDeltas(a, b)).toEqual({
      base_version: 4,
      version: 6,
      services: [s("b", "http://b2"), s("x")],
      removed: ["c", "y"],
      head: { n: 1 },
    });
    const c = { base_version: 6, version: 7, services: [], removed: [], head: { n: 2 } };
    expect(composeDeltas(composeDeltas(a, b), c)?.head).toEqual({ n: 2 });
  });

  it("leaves deltas that are not consecutive or not shaped as deltas alone", () => {
    const a = { base_version: 4, version: 5, services: [], removed: [] };
    expect(composeDeltas(a, { base_version: 6, version: 7, services: [], removed: [] })).toBeNull();
    expect(composeDeltas(a, { base_version: 5, version: 6, services: [{ url: "no name" }], removed: [] })).toBeNull();
    expect(composeDeltas(a, { base_version: 5, version: 6, services: [] })).toBeNull();
    expect(composeDeltas(null, a)).toBeNull();
  });
});
