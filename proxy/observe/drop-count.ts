/**
 * @module
 * Counting what a sink drops (access log lines, spans) and saying so in the log at most once per
 * interval, so a slow disk or collector shows without flooding the log.
 */

const REPORT_MS = 10_000;

export class DropCount {
  readonly #what: string;
  readonly #log: (line: string) => void;
  #total = 0;
  #unreported = 0;
  #reasons = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  /** `what`: "access log: lines" or "tracing: spans", the subject and the unit of the log line. */
  constructor(what: string, log: (line: string) => void) {
    this.#what = what;
    this.#log = log;
  }

  get total(): number {
    return this.#total;
  }

  add(n: number, reason: string): void {
    if (n <= 0) return;
    this.#total += n;
    this.#unreported += n;
    this.#reasons.add(reason);
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.flush(), REPORT_MS);
    this.#timer.unref();
  }

  /** Logs what was dropped since the last line, now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#unreported === 0) return;
    const [subject, unit] = this.#what.split(": ") as [string, string];
    this.#log(`${subject}: ${this.#unreported} ${unit} dropped (${[...this.#reasons].join("; ")})`);
    this.#unreported = 0;
    this.#reasons.clear();
  }
}
