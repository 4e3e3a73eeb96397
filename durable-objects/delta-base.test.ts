import { describe, expect, it } from "vitest";
import type { DeltaVersions } from "./delta-base.ts";
import { deltaPossible } from "./delta-base.ts";

const gateway = (config_version: number, full_version: number) =>
  ({ config_version, full_version }) satisfies DeltaVersions;

describe("deltaPossible", () => {
  it("from a version the object has seen, at or above full_version, below the current one", () => {
    expect(deltaPossible(gateway(10, 0), 9)).toBe(true);
    expect(deltaPossible(gateway(10, 4), 4)).toBe(true);
  });

  it("not from nothing, from 0, from the current version or one ahead of it", () => {
    expect(deltaPossible(gateway(10, 0), null)).toBe(false);
    expect(deltaPossible(gateway(10, 0), 0)).toBe(false);
    expect(deltaPossible(gateway(10, 0), 10)).toBe(false);
    expect(deltaPossible(gateway(10, 0), 12)).toBe(false);
  });

  it("not from below full_version (a change of every service, or a pruned tombstone)", () => {
    expect(deltaPossible(gateway(10, 4), 3)).toBe(false);
  });
});
