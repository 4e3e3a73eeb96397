/**
 * @module
 * Fires the Worker's scheduled handler the way production's cron trigger does. `wrangler dev` never
 * fires crons on its own (it only prints how to trigger one by hand), so without this the webhook
 * sweep (`pokeOverdue`) never runs locally and a delivery whose wake-up was lost is never retried.
 * Wrangler 4's supported trigger is `GET /cdn-cgi/handler/scheduled?cron=…` (always enabled in
 * `wrangler dev`; the older `--test-scheduled` flag and its `/__scheduled` path are the legacy form).
 */

/** The cron of wrangler.toml's `[triggers]` (a test keeps the two equal). */
export const WORKER_CRON = "* * * * *";
/** Production fires `* * * * *` once a minute. */
export const CRON_INTERVAL_MS = 60_000;

/** Runs the scheduled handler of the Worker at `baseUrl` once; throws if it did not succeed. */
export async function triggerScheduled(baseUrl: string, cron = WORKER_CRON): Promise<void> {
  const url = `${baseUrl}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent(cron)}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = await response.text();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${body.slice(0, 200)}`);
}

export interface CronTimer {
  stop(): Promise<void>;
}

/**
 * Calls `tick` every `intervalMs`, never two at once (a slow tick delays the next, like a cron
 * whose run overlaps is skipped); `onError` gets a tick's failure and the timer keeps going.
 * `stop` waits for a tick in flight.
 */
export function startCronTimer(
  intervalMs: number,
  tick: () => Promise<void>,
  onError: (error: unknown) => void,
): CronTimer {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().catch(onError).finally(schedule);
    }, intervalMs);
    // The cron alone must not keep a process alive.
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/**
 * Wraps a line printer so that wrangler's notice "Scheduled Workers are not automatically triggered
 * during local development" (and its three lines of how to curl the trigger) is replaced by one line
 * saying the stack fires the cron itself: printed verbatim, it tells a newcomer to do by hand what
 * the stack already does.
 */
export function withoutCronNotice(print: (line: string) => void): (line: string) => void {
  let skip = 0;
  return (line) => {
    if (line.includes("Scheduled Workers are not automatically triggered")) {
      // The notice's next lines: "To manually trigger…", the curl command, "For more details…".
      skip = 3;
      print("(wrangler dev does not fire crons: npm start fires the Worker's cron every minute itself)");
      return;
    }
    if (skip > 0) {
      skip--;
      if (/manually trigger|cdn-cgi\/handler\/scheduled|For more details/.test(line)) return;
      skip = 0;
    }
    print(line);
  };
}
