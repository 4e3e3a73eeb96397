import { describe, expect, it } from "vitest";
import { startCronTimer } from "./cron.ts";

describe("startCronTimer", () => {
  it("ticks again after a failed tick, never two at once, and stop waits for the tick in flight", async () => {
    const errors: unknown[] = [];
    let running = 0;
    let overlapped = false;
    let ticks = 0;
    let third: () => void = () => {};
    const reachedThird = new Promise<void>((resolve) => {
      third = resolve;
    });
    let finishThird: () => void = () => {};
    const timer = startCronTimer(
      1,
      async () => {
        running++;
        overlapped ||= running > 1;
        ticks++;
        try {
          if (ticks === 1) throw new Error("control plane down");
          if (ticks === 3) {
            third();
            await new Promise<void>((resolve) => {
              finishThird = resolve;
            });
          }
        } finally {
          running--;
        }
      },
      (error) => errors.push(error),
    );
    await reachedThird;
    let stopped = false;
    const stopping = timer.stop().then(() => {
      stopped = true;
    });
    await Promise.resolve();
    expect(stopped).toBe(false);
    finishThird();
    await stopping;
    expect(ticks).toBe(3);
    expect(overlapped).toBe(false);
    expect(errors).toEqual([new Error("control plane down")]);
  });
});
