/**
 * @module
 * What every command gets: output helpers bound to the terminal's capabilities, confirmation
 * prompts, and the control plane client (resolved lazily so `--help` works without settings).
 */
import { ControlPlane } from "./api-client.ts";
import type { GlobalValues } from "./args.ts";
import type { Io } from "./io.ts";
import { LiveDisplay, withSpinner } from "./live-display.ts";
import { confirm, type LineReader } from "./prompt.ts";
import { resolveSettings, type Settings } from "./settings.ts";
import { isInteractive, type Style, styleFor } from "./style.ts";

export interface Context {
  io: Io;
  style: Style;
  /** stdout is a terminal we may redraw on. */
  interactive: boolean;
  print(text?: string): void;
  printLines(lines: readonly string[]): void;
  settings(): Settings;
  api(): ControlPlane;
  confirm(question: string): Promise<boolean>;
  spinner<T>(text: string, work: () => Promise<T>): Promise<T>;
  live(title: string): LiveDisplay;
}

export function createContext(io: Io, global: GlobalValues, lines: LineReader): Context {
  let settings: Settings | undefined;
  let api: ControlPlane | undefined;
  const interactive = isInteractive(io);
  const context: Context = {
    io,
    style: styleFor(io),
    interactive,
    print: (text = "") => io.stdout.write(`${text}\n`),
    printLines: (out) => {
      if (out.length > 0) io.stdout.write(`${out.join("\n")}\n`);
    },
    settings() {
      settings ??= resolveSettings({ url: global.url, token: global.token, project: global.project }, io);
      return settings;
    },
    api() {
      api ??= new ControlPlane(context.settings());
      return api;
    },
    confirm: (question) => confirm(question, lines, io),
    spinner: (text, work) => withSpinner(io.stdout, interactive, text, work),
    live: (title) => new LiveDisplay(io.stdout, interactive, title),
  };
  return context;
}
