import { describe, expect, it } from "vitest";
import { CoalescedWrite } from "./coalesced-write.ts";
import { stringifyInSlices } from "./json-in-slices.ts";

describe("CoalescedWrite", () => {
  it("keeps one write in flight and collapses what arrives meanwhile into one write of the latest", async () => {
    const written: number[] = [];
    const gates: (() => void)[] = [];
    const w = new CoalescedWrite<number>(async (n) => {
      await new Promise<void>((resolve) => gates.push(resolve));
      written.push(n);
    });
    const first = w.write(1);
    const second = w.write(2);
    const third = w.write(3);
    expect(gates).toHaveLength(1);
    gates.shift()!();
    await first;
    expect(written).toEqual([1]);
    // 2 was never written: 3 replaced it while 1 was in flight.
    await new Promise((r) => setImmediate(r));
    gates.shift()!();
    await Promise.all([second, third]);
    expect(written).toEqual([1, 3]);
    await w.idle();
  });

  it("rejects the writes a failed write stood for, and writes again later", async () => {
    let fail = true;
    const w = new CoalescedWrite<string>(async () => {
      if (fail) throw new Error("EISDIR");
    });
    await expect(w.write("a")).rejects.toThrow("EISDIR");
    fail = false;
    await expect(w.write("b")).resolves.toBeUndefined();
  });
});

describe("stringifyInSlices", () => {
  it("gives JSON.stringify's text, whatever the slice", async () => {
    const value = {
      version: 3,
      services: Array.from({ length: 7 }, (_, i) => ({ name: `s${i}`, n: [i] })),
      after: "x",
    };
    for (const slice of [1, 2, 7, 100])
      expect(await stringifyInSlices(value, "services", slice)).toBe(JSON.stringify(value));
    expect(await stringifyInSlices({ services: [] }, "services")).toBe('{"services":[]}');
  });
});
