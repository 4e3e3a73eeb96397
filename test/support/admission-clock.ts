import type { AdmissionClock } from "../../proxy/admission/admission-queue.ts";

/** An admission gate's clock that moves only when told: its timers fire in order as `advance` passes them. */
export class TestClock implements AdmissionClock {
  t = 0;
  readonly timers = new Set<{ at: number; fn: () => void }>();
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    const timer = { at: this.t + ms, fn };
    this.timers.add(timer);
    return timer;
  };
  clearTimer = (timer: unknown) => {
    this.timers.delete(timer as { at: number; fn: () => void });
  };
  advance(ms: number): void {
    this.t += ms;
    for (const timer of [...this.timers].sort((a, b) => a.at - b.at)) {
      if (timer.at > this.t) break;
      this.timers.delete(timer);
      timer.fn();
    }
  }
}
