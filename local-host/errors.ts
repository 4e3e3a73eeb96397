/**
 * @module
 * Typed errors of the local host daemon and the `npm start` stack.
 */

/** An error the daemon answers with: an HTTP status and a stable `code` the backend can branch on. */
export class DaemonHttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "DaemonHttpError";
    this.status = status;
    this.code = code;
  }
}

/** The persisted state file exists but cannot be read: refuse to start rather than forget hosts. */
export class StateFileError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.name = "StateFileError";
    this.path = path;
  }
}

/** A step of `startStack` failed; `output` carries what the failing tool printed, for the user. */
export class StackError extends Error {
  readonly step: string;
  readonly output: string;
  constructor(step: string, message: string, output = "", options?: { cause?: unknown }) {
    super(output ? `${step}: ${message}\n--- output ---\n${output}` : `${step}: ${message}`, options);
    this.name = "StackError";
    this.step = step;
    this.output = output;
  }
}
