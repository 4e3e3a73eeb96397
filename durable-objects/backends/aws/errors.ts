/**
 * @module
 * AWS errors as the gateway shows them (`AWS Error: <Code>: <Message>`, as dstack words them) and
 * which of them are worth retrying.
 */
import { BackendError } from "../types.ts";
import { child, list, parseXml, text } from "./xml.ts";

/** Codes AWS uses for "slow down" or "try again" (EC2, ELBv2, STS spell them differently). */
const RETRYABLE_CODES = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "RequestThrottled",
  "TooManyRequestsException",
  "ServiceUnavailable",
  "Unavailable",
  "InternalError",
  "InternalFailure",
  "InsufficientInstanceCapacity",
]);

export function awsError(code: string, message: string, status: number, cause?: unknown): BackendError {
  const retryable = RETRYABLE_CODES.has(code) || status >= 500 || status === 429;
  return new BackendError(code, `AWS Error: ${code}: ${message}`, { retryable, cause });
}

/** Reads `<Response><Errors><Error>` (EC2) or `<ErrorResponse><Error>` (ELBv2, STS). */
export function parseErrorBody(status: number, body: string): BackendError {
  let code: string | null = null;
  let message: string | null = null;
  try {
    const doc = parseXml(body);
    const error =
      list(child(doc, "Response"), "Errors", "item")[0] ??
      child(child(child(doc, "Response"), "Errors"), "Error") ??
      child(child(doc, "ErrorResponse"), "Error");
    code = text(error, "Code");
    message = text(error, "Message");
  } catch {
    // Not XML (a proxy's error page): the status line is all there is.
  }
  return awsError(code ?? `HTTP${status}`, message ?? (body.slice(0, 200).trim() || `HTTP status ${status}`), status);
}

/** The endpoint could not be reached or did not answer in time. */
export function networkError(what: string, cause: unknown): BackendError {
  const timedOut = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
  const detail = timedOut ? "no answer before the request timeout" : String(cause);
  return new BackendError(
    timedOut ? "Timeout" : "Unreachable",
    `AWS Error: ${timedOut ? "Timeout" : "Unreachable"}: ${what}: ${detail}`,
    {
      retryable: true,
      cause,
    },
  );
}

export const hasCode = (e: unknown, ...codes: string[]): boolean => e instanceof BackendError && codes.includes(e.code);
