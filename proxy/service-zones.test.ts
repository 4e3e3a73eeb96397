import { describe, expect, it } from "vitest";
import { fakeDocument, prng, randomDelta, serviceName } from "../test/fakes/config-documents.ts";
import { indexDocument } from "./config-merge.ts";
import { ZoneRegistry } from "./rate-limit-store.ts";
import { documentZones } from "./routes.ts";
import { ServiceZones } from "./service-zones.ts";

describe("a pool parent's service zones", () => {
  it("follow random deltas to the zones a whole document has, keeping the buckets of untouched services", () => {
    const rng = prng(11);
    let n = 30;
    const state = indexDocument(fakeDocument(30, 1, (i) => ({ rateLimit: i % 3 === 0 ? 1 : null })));
    const registry = new ZoneRegistry(100, () => 0);
    const zones = new ServiceZones(registry);
    zones.retain(state.doc.services);
    for (let step = 0; step < 40; step++) {
      const delta = randomDelta(state.doc, rng, () => serviceName(n++));
      const before = new Map(registry.ids().map((id) => [id, registry.zone(id)]));
      state.apply(delta);
      zones.retainChanged(delta.services, delta.removed);
      expect(registry.ids().sort()).toEqual(
        documentZones(state.doc)
          .map((z) => z.id)
          .sort(),
      );
      // A zone that stays is the same zone (its buckets kept).
      for (const id of registry.ids()) if (before.has(id)) expect(registry.zone(id)).toBe(before.get(id));
    }
  });
});
