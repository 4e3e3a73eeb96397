/**
 * @module
 * The engine scraper's time: injected so tests drive it (`fake-clock.ts`) and nothing sleeps.
 */

export interface ScrapeClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time; timers never keep the process alive. */
export const realClock: ScrapeClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
