import { describe, expect, it } from "vitest";
import { FakeClock } from "./fake-clock.ts";
import { QueueSampler, QueueSamples } from "./queue-samples.ts";

describe("queue samples", () => {
  it("sums samples over the 5-s slots each window covers, the current one included", () => {
    const q = new QueueSamples();
    const t0 = 1_000_000;
    q.add("llm", 4, t0);
    q.add("llm", 2, t0 + 1_000);
    q.add("llm", 6, t0 + 40_000);
    const w = q.windows("llm", t0 + 41_000);
    expect(w["30"]).toEqual({ waiting: 6, samples: 1 });
    expect(w["60"]).toEqual({ waiting: 12, samples: 3 });
    expect(q.windows("other", t0)).toEqual({});
    q.retain(new Set());
    expect(q.windows("llm", t0 + 41_000)).toEqual({});
  });
});

describe("the queue sampler", () => {
  function setup() {
    const clock = new FakeClock();
    let fresh: [string, number][] = [];
    let services = new Set(["llm", "idle"]);
    let active = true;
    const sampler = new QueueSampler(clock, 2_000, {
      freshWaiting: () => fresh,
      services: () => services,
      active: () => active,
    });
    return {
      clock,
      sampler,
      set: (f: [string, number][], s = services, a = active) => {
        fresh = f;
        services = s;
        active = a;
      },
    };
  }

  it("takes one sample per interval of each service's mean waiting over its fresh replicas", async () => {
    const { clock, sampler, set } = setup();
    set([
      ["llm", 4],
      ["llm", 0],
      ["other", 3],
    ]);
    sampler.start();
    sampler.start(); // a second start while running adds no tick
    await clock.advance(10_000);
    expect(sampler.windows("llm")["30"]).toEqual({ waiting: 5 * 2, samples: 5 });
    // A service no longer scraped loses its ring; one without fresh replicas takes no sample.
    expect(sampler.windows("other")).toEqual({});
    expect(sampler.windows("idle")).toEqual({});
    sampler.close();
  });

  it("stops ticking while nothing is scraped, and again after close", async () => {
    const { clock, sampler, set } = setup();
    set([["llm", 1]], new Set(["llm"]), false);
    sampler.start();
    await clock.advance(10_000);
    expect(sampler.windows("llm")["30"]!.samples).toBe(1);
    expect(clock.pending()).toEqual([]);
    set([["llm", 1]], new Set(["llm"]), true);
    sampler.start();
    sampler.close();
    expect(clock.pending()).toEqual([]);
    sampler.start();
    expect(clock.pending()).toEqual([]);
  });
});
