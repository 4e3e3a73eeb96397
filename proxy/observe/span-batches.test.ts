import { describe, expect, it } from "vitest";
import { SpanBatches } from "./span-batches.ts";

const PREFIX = Buffer.from("[");
const SUFFIX = Buffer.from("]");
const span = (i: number, pad = 1_000) => JSON.stringify({ i, pad: "é".repeat(pad % 7) + "x".repeat(pad) });

describe("span batches", () => {
  it("group spans in batches of the size asked, across chunks, in order", () => {
    const batches = new SpanBatches(512);
    for (let i = 0; i < 1_500; i++) batches.add(span(i));
    expect(batches.spans).toBe(1_500);
    expect(batches.full).toBe(true);
    const bodies: { i: number }[][] = [];
    for (let batch = batches.take(); batch; batch = batches.take()) {
      bodies.push(JSON.parse(batches.body(batch, PREFIX, SUFFIX).toString()));
    }
    expect(bodies.map((b) => b.length)).toEqual([512, 512, 476]);
    expect(bodies.flat().map((s) => s.i)).toEqual([...Array(1_500).keys()]);
    expect(batches.spans).toBe(0);
    expect(batches.take()).toBeNull();
  });

  it("keep a body whole when its chunks are reused for the next spans", () => {
    const batches = new SpanBatches(100);
    for (let i = 0; i < 100; i++) batches.add(span(i));
    const body = batches.body(batches.take()!, PREFIX, SUFFIX);
    for (let i = 100; i < 200; i++) batches.add(span(i));
    const next = batches.body(batches.take()!, PREFIX, SUFFIX);
    expect((JSON.parse(body.toString()) as { i: number }[]).map((s) => s.i)).toEqual([...Array(100).keys()]);
    expect((JSON.parse(next.toString()) as { i: number }[])[0]!.i).toBe(100);
  });

  it("take a span larger than a chunk, and drop everything on clear", () => {
    const batches = new SpanBatches(10);
    batches.add(span(0, 10));
    batches.add(span(1, 200_000));
    batches.add(span(2, 10));
    const parsed = JSON.parse(batches.body(batches.take()!, PREFIX, SUFFIX).toString()) as { i: number }[];
    expect(parsed.map((s) => s.i)).toEqual([0, 1, 2]);
    for (let i = 0; i < 25; i++) batches.add(span(i, 10));
    expect(batches.clear()).toBe(25);
    expect(batches.spans).toBe(0);
    expect(batches.take()).toBeNull();
  });
});
