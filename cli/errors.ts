/**
 * @module
 * Every failure the CLI expects is one of these; `run` renders it once, as one line per problem on
 * stderr, and exits with its code. Anything else is a bug and is reported as such.
 */

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Wrong command line: exit status 2, as getopt-style tools do, so scripts can tell it from a failure. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}

/**
 * The control plane answered with an error body (`{error: {code, message, field?}}`): the client's
 * view of what the Worker throws as its `ApiError` and renders.
 */
export class ControlPlaneError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = "ControlPlaneError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** The control plane could not be reached at all (refused, DNS, TLS, timeout). */
export class NetworkError extends CliError {
  constructor(url: string, reason: string) {
    super(`cannot reach the control plane at ${url}: ${reason}`);
    this.name = "NetworkError";
  }
}

/** The user pressed Ctrl-C while we were waiting; 130 = 128 + SIGINT, what shells report. */
export const INTERRUPTED_EXIT_CODE = 130;
