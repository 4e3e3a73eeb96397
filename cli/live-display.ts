/**
 * @module
 * Spinners and in-place refreshed blocks ("Provisioning gw...", `gateway list -w`). On a terminal the
 * block is redrawn with cursor movement; elsewhere only what is worth keeping in a log is printed.
 */
import { escapeLine } from "./escape.ts";
import type { Output } from "./io.ts";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const FRAME_MS = 100;

export class LiveDisplay {
  readonly #out: Output;
  readonly #interactive: boolean;
  #title: string;
  #body: string[] = [];
  #frame = 0;
  #drawnRows = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** `title` gets a spinner in front of it; `""` for a block without one. */
  constructor(out: Output, interactive: boolean, title: string) {
    this.#out = out;
    this.#interactive = interactive;
    this.#title = title;
  }

  start(): this {
    if (this.#interactive) {
      this.#draw();
      this.#timer = setInterval(() => {
        this.#frame = (this.#frame + 1) % FRAMES.length;
        this.#draw();
      }, FRAME_MS);
      // The spinner alone must never keep the process alive.
      this.#timer.unref?.();
    } else if (this.#title) {
      this.#out.write(`${escapeLine(this.#title)}\n`);
    }
    return this;
  }

  update(body: string[]): void {
    this.#body = body;
    if (this.#interactive) this.#draw();
  }

  /** Removes the block from a terminal; the caller prints whatever should stay. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#interactive) this.#erase();
  }

  #draw() {
    const lines = this.#title ? [`${FRAMES[this.#frame]} ${this.#title}`, ...this.#body] : this.#body;
    // Erase and redraw in one write, so the terminal never shows the block half gone.
    this.#out.write(this.#eraseCode() + (lines.length > 0 ? `${lines.map(escapeLine).join("\n")}\n` : ""));
    const columns = this.#out.columns && this.#out.columns > 0 ? this.#out.columns : Number.POSITIVE_INFINITY;
    // Long lines wrap and take several rows; erase must climb over all of them.
    this.#drawnRows = lines.reduce((rows, line) => rows + Math.max(1, Math.ceil(visibleWidth(line) / columns)), 0);
  }

  #erase() {
    const code = this.#eraseCode();
    if (code) this.#out.write(code);
    this.#drawnRows = 0;
  }

  #eraseCode(): string {
    return this.#drawnRows === 0 ? "" : `\x1b[${this.#drawnRows}F\x1b[0J`;
  }
}

/** Runs `work` behind a spinner line that disappears when it settles. */
export async function withSpinner<T>(out: Output, interactive: boolean, text: string, work: () => Promise<T>) {
  if (!interactive) return work();
  const display = new LiveDisplay(out, true, text).start();
  try {
    return await work();
  } finally {
    display.stop();
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point.
const visibleWidth = (line: string): number => [...line.replace(/\x1b\[[0-9;]*m/g, "")].length;
