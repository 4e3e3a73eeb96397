/**
 * @module
 * Typed errors of the proxy. `ConfigRejectedError` carries every problem found in a document so the
 * agent can NACK with one readable reason.
 */

/** `startProxy` was given options it cannot work with. */
export class ProxyOptionsError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "ProxyOptionsError";
    this.field = field;
  }
}

/** A configuration document was refused; the previous one stays in force. */
export class ConfigRejectedError extends Error {
  readonly version: number | null;
  readonly problems: readonly string[];
  constructor(version: number | null, problems: readonly string[]) {
    const which = version === null ? "configuration" : `configuration version ${version}`;
    super(`${which} rejected: ${problems.join("; ")}`);
    this.name = "ConfigRejectedError";
    this.version = version;
    this.problems = problems;
  }
}

/** A proxy child process failed to start, to answer, or to apply what every other process applied. */
export class ProxyProcessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProxyProcessError";
  }
}

/** The proxy was closed; it no longer applies documents or reports stats. */
export class ProxyClosedError extends Error {
  constructor() {
    super("the proxy is closed");
    this.name = "ProxyClosedError";
  }
}

/** A chunked request body outgrew the service's `client_max_body_size` while streaming. */
export class BodyTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = "BodyTooLargeError";
    this.limit = limit;
  }
}
