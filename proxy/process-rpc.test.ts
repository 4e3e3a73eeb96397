import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProxyProcessError } from "./errors.ts";
import type { Child } from "./process-fork.ts";
import { restartDelay } from "./process-pool.ts";
import type { ToProcess } from "./process-protocol.ts";
import { ProcessGoneError, ProcessRpc } from "./process-rpc.ts";

/** A child that records what it is sent. */
function child(pid: number): Child & { sent: ToProcess[] } {
  const sent: ToProcess[] = [];
  return { process: { pid } as ChildProcess, send: (message) => sent.push(message), sent };
}

afterEach(() => vi.useRealTimers());

/** Positions of a pool (the owners of requests). */
const slotA = { index: 0 };
const slotB = { index: 1 };
const slotC = { index: 2 };

describe("ProcessRpc", () => {
  it("resolves each request with the answer carrying its id, whatever the order", async () => {
    const rpc = new ProcessRpc(1_000);
    const a = child(11);
    const first = rpc.request(slotA, a, { type: "stats", id: rpc.nextId() });
    const second = rpc.request(slotA, a, { type: "stats", id: rpc.nextId() });
    expect(a.sent.map((m) => ("id" in m ? m.id : null))).toEqual([1, 2]);
    rpc.answer({ type: "stats", id: 2, stats: [] });
    rpc.answer({ type: "applied", id: 1, version: 7 });
    // Unknown and repeated ids are ignored.
    rpc.answer({ type: "applied", id: 1, version: 8 });
    rpc.answer({ type: "set", id: 99 });
    await expect(first).resolves.toEqual({ type: "applied", id: 1, version: 7 });
    await expect(second).resolves.toEqual({ type: "stats", id: 2, stats: [] });
  });

  it("fails a request that is not answered within its bound, naming the process", async () => {
    vi.useFakeTimers();
    const rpc = new ProcessRpc(2_000);
    const pending = rpc.request(slotA, child(12), { type: "stats", id: rpc.nextId() });
    const outcome = pending.catch((err: unknown) => err);
    vi.advanceTimersByTime(2_000);
    const err = await outcome;
    expect(err).toBeInstanceOf(ProxyProcessError);
    expect((err as Error).message).toBe("proxy process 12 did not answer within 2s");
  });

  it("fails the requests of a child that exits, and only those", async () => {
    const rpc = new ProcessRpc(1_000);
    const gone = rpc.request(slotA, child(13), { type: "stats", id: rpc.nextId() });
    const kept = rpc.request(slotB, child(14), { type: "stats", id: rpc.nextId() });
    rpc.gone(slotA, 13);
    const err = await gone.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessGoneError);
    expect((err as Error).message).toBe("proxy process 13 exited");
    rpc.answer({ type: "stats", id: 2, stats: [] });
    await expect(kept).resolves.toMatchObject({ id: 2 });
    // A position without a child: gone at once, nothing sent.
    await expect(rpc.request(slotC, null, { type: "stats", id: rpc.nextId() })).rejects.toBeInstanceOf(
      ProcessGoneError,
    );
  });
});

describe("restartDelay", () => {
  it("restarts at once after a long life, then doubles from 200 ms up to 10 s", () => {
    expect([0, 1, 2, 3, 6, 7, 20].map(restartDelay)).toEqual([0, 0, 200, 400, 3_200, 6_400, 10_000]);
  });
});
