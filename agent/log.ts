/**
 * @module
 * The agent's log: one line per event, `time level message`, on stdout (the host's log file).
 */

export type LogLevel = "info" | "warn" | "error";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const emit = (level: LogLevel, message: string) =>
    write(`${new Date().toISOString()} ${level} ${message.replaceAll("\n", " ")}\n`);
  return {
    info: (message) => emit("info", message),
    warn: (message) => emit("warn", message),
    error: (message) => emit("error", message),
  };
}
