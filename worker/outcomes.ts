/**
 * @module
 * The one place that turns a Durable Object's refusal (a `Failure` kind) into an HTTP status.
 * The objects say what happened; which status that is, is the API's business.
 */
import type { Failure, FailureKind, Outcome } from "../core/outcome.ts";
import { ApiError, type ErrorStatus } from "./errors.ts";

const STATUS: Record<FailureKind, ErrorStatus> = {
  invalid: 400,
  denied: 401,
  not_found: 404,
  conflict: 409,
  busy: 409,
};

/** The refusal as the API error the app's error handler renders. */
export const failureError = (f: Failure): ApiError => new ApiError(STATUS[f.kind], f.code, f.message, f.field);

/** The value of a successful outcome; a refusal is thrown as its API error. */
export const unwrap = <T>(outcome: Outcome<T>): T => {
  if (outcome.ok) return outcome.value;
  throw failureError(outcome.error);
};
