/**
 * @module
 * Typed API errors, rendered once by the app's error handler as `{error: {code, message, field?}}`.
 * Everything a user can get wrong is a 4xx with a code a client can branch on.
 */
import { ValidationError } from "../schema/issues.ts";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503;

/** An error with its status, as the Worker renders it (the Durable Objects return `Failure`s instead). */
export interface ErrorInfo {
  status: ErrorStatus;
  code: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  readonly status: ErrorStatus;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: ErrorStatus, code: string, message: string, field?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
  static from(info: ErrorInfo): ApiError {
    return new ApiError(info.status, info.code, info.message, info.field);
  }
}

export const badRequest = (message: string, field?: string) => new ApiError(400, "invalid_request", message, field);
export const unauthorized = (message = "missing or invalid bearer token") => new ApiError(401, "unauthorized", message);
export const forbidden = (message: string) => new ApiError(403, "forbidden", message);
export const notFound = (message: string) => new ApiError(404, "not_found", message);
export const conflict = (code: string, message: string, field?: string) => new ApiError(409, code, message, field);

/** Turns anything thrown into an ApiError; unknown errors become a 500 without internals. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) return new ApiError(400, "invalid_field", err.message, err.field);
  return new ApiError(500, "internal", "internal error; the operation may be retried");
}
