import { describe, expect, it } from "vitest";
import { startCronTimer, withoutCronNotice } from "./cron.ts";

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

describe("wrangler's cron notice", () => {
  it("is replaced by one line saying the stack fires the cron; other lines pass as they are", () => {
    const printed: string[] = [];
    const print = withoutCronNotice((line) => printed.push(line));
    for (const line of [
      "▲ [WARNING] Scheduled Workers are not automatically triggered during local development.",
      "  To manually trigger a scheduled event, run:",
      '    curl "http://127.0.0.1:8787/cdn-cgi/handler/scheduled"',
      "  For more details, see https://developers.cloudflare.com/workers/configuration/cron-triggers/",
      "✘ [ERROR] something else",
    ]) {
      print(line);
    }
    expect(printed).toEqual([
      "(wrangler dev does not fire crons: npm start fires the Worker's cron every minute itself)",
      "✘ [ERROR] something else",
    ]);
  });

  it("stops skipping at the first line that is not the notice's", () => {
    const printed: string[] = [];
    const print = withoutCronNotice((line) => printed.push(line));
    print("Scheduled Workers are not automatically triggered during local development.");
    print("▲ [WARNING] another warning");
    expect(printed.at(-1)).toBe("▲ [WARNING] another warning");
  });
});
