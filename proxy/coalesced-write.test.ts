import { describe, expect, it, vi } from "vitest";
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

describe("CoalescedWrite.writeLater", () => {
  it("waits the spacing times the last write's duration, sharing one write among the values meanwhile; a write ends the wait", async () => {
    const written: number[] = [];
    let t = 0;
    // The clock: each write takes 10 ms of it; timers are real but short.
    const w = new CoalescedWrite<number>(
      async (n) => {
        t += 10;
        written.push(n);
      },
      { spacing: 3 },
    );
    const now = vi.spyOn(performance, "now").mockImplementation(() => t);
    try {
      await w.write(1);
      // The next deferred write may start 30 ms after the first ended (t = 10 → 40).
      const later = [w.writeLater(2), w.writeLater(3)];
      await new Promise((r) => setImmediate(r));
      expect(written).toEqual([1]);
      t = 40;
      await Promise.all(later);
      expect(written).toEqual([1, 3]);
      // Deferred again (until t = 50 + 30), but a whole write starts it at once, with the latest value.
      const deferred = w.writeLater(4);
      const whole = w.write(5);
      await Promise.all([deferred, whole]);
      expect(written).toEqual([1, 3, 5]);
    } finally {
      now.mockRestore();
    }
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
