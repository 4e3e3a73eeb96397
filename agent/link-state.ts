/**
 * @module
 * Whether the WebSocket to the control plane is up, and since when. The HTTP fallbacks (heartbeat,
 * config polling) run only while it is down, and wake when it changes.
 */

export class LinkState {
  private up = false;
  private changedAt: number;
  private waiters: Array<() => void> = [];

  constructor(now = Date.now()) {
    // Down from the start: the HTTP fallbacks count the boot as the moment the link went missing.
    this.changedAt = now;
  }

  get connected(): boolean {
    return this.up;
  }

  /** Milliseconds since the epoch of the last change (or of the start). */
  get since(): number {
    return this.changedAt;
  }

  set(connected: boolean): void {
    if (connected === this.up) return;
    this.up = connected;
    this.changedAt = Date.now();
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves at the next change, after `ms` (if given), or when `signal` aborts, whichever comes first. */
  changed(signal: AbortSignal, ms?: number): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, Math.max(0, ms));
      this.waiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
