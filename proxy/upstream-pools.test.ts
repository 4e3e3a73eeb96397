import { describe, expect, it } from "vitest";
import { DEFAULT_POOL_SETTINGS, UpstreamPools } from "./upstream-pools.ts";

describe("upstream pools", () => {
  it("follow a delta: only the origins it took away close, the others are not visited", async () => {
    const pools = new UpstreamPools(DEFAULT_POOL_SETTINGS);
    const [a, b, c] = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"];
    const wanted = new Set([a, b, c]);
    pools.retain(wanted);
    const kept = pools.get(a);
    const gone = pools.get(b);
    pools.get(c);
    // The table's origins changed in place: b is no longer there.
    wanted.delete(b);
    pools.retainChanged(wanted, [b]);
    expect(pools.origins()).toEqual([a, c]);
    expect(pools.get(a)).toBe(kept);
    expect(gone.closed).toBe(true);
    // An origin a delta named as gone but that another replica still has stays.
    pools.retainChanged(wanted, [c]);
    expect(pools.origins()).toEqual([a, c]);
    await pools.closeAll();
  });
});
