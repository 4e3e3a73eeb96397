/**
 * @module
 * What every command gets: output helpers bound to the terminal's capabilities, confirmation
 * prompts, and the control plane client (resolved lazily so `--help` works without settings).
 */
import { ControlPlane } from "./api-client.ts";
import type { GlobalValues } from "./args.ts";
import { escapeLine, toJsonText } from "./escape.ts";
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
  /** One line; control characters in it (server strings) are shown escaped, newlines included. */
  print(text?: string): void;
  /** Lines, each escaped like {@link Context.print} but keeping the CLI's own bold/dim. */
  printLines(lines: readonly string[]): void;
  /** `--json` output: pretty JSON, valid and free of raw control characters. */
  printJson(value: unknown): void;
  /** A line on stderr, escaped like {@link Context.print}. */
  printError(text: string): void;
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
  const flags = { url: global["api-url"], token: global.token, project: global.project };
  const context: Context = {
    io,
    style: styleFor(io),
    interactive,
    print: (text = "") => io.stdout.write(`${escapeLine(text)}\n`),
    printLines: (out) => {
      if (out.length > 0) io.stdout.write(`${out.map(escapeLine).join("\n")}\n`);
    },
    printJson: (value) => io.stdout.write(`${toJsonText(value)}\n`),
    printError: (text) => io.stderr.write(`${escapeLine(text)}\n`),
    settings() {
      settings ??= resolveSettings(flags, io);
      return settings;
    },
    api() {
      // Commands that are not about a project (user, token) must work without one configured.
      api ??= new ControlPlane(settings ?? resolveSettings(flags, io, false));
      return api;
    },
    confirm: (question) => confirm(question, lines, io),
    spinner: (text, work) => withSpinner(io.stdout, interactive, text, work),
    live: (title) => new LiveDisplay(io.stdout, interactive, title),
  };
  return context;
}
