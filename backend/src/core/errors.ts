/**
 * One error type for the whole API, mapped to JSON `{ error, code, message, ...extra }` in one
 * place (`errorResponse`), including PostgreSQL errors and Hono's own HTTP exceptions.
 */

import { INVALID_INPUT_SQLSTATES, isDatabaseUnavailable, SQLSTATE } from '@sync/db/postgres-errors';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ERROR_CODE, type ErrorCode } from './protocol.ts';

export class AppError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  static notFound(what = 'Resource') {
    return new AppError(404, ERROR_CODE.notFound, `${what} not found`);
  }

  /** 429 with the seconds to wait in `Retry-After`. */
  static rateLimited(message: string, retryAfterSeconds: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    return new AppError(
      429,
      ERROR_CODE.rateLimited,
      message,
      { retryAfter: seconds },
      { 'retry-after': String(seconds) },
    );
  }
}

const SHORT_WORD: Partial<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  429: 'rate_limited',
  503: 'unavailable',
};

export function errorBody(
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return { error: SHORT_WORD[status] ?? 'error', code, message, ...extra };
}

interface PostgresError {
  code?: string;
  errno?: string;
  message?: string;
}

function fromPostgres(err: PostgresError): AppError | null {
  const code = err.code ?? '';
  if (INVALID_INPUT_SQLSTATES.has(code))
    return new AppError(400, ERROR_CODE.validationFailed, 'Invalid value');
  if (code === SQLSTATE.uniqueViolation)
    return new AppError(409, ERROR_CODE.idTaken, 'A record with this key already exists');
  if (code === SQLSTATE.foreignKeyViolation)
    return new AppError(400, ERROR_CODE.validationFailed, 'A referenced record does not exist');
  if (isDatabaseUnavailable(code)) {
    return new AppError(503, ERROR_CODE.serviceUnavailable, 'The database is unavailable');
  }
  return null;
}

function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413)
      return new AppError(413, ERROR_CODE.payloadTooLarge, 'Request body is larger than 1 MiB');
    if (err.status === 400)
      return new AppError(400, ERROR_CODE.validationFailed, err.message || 'Bad request');
    // zod-openapi's media-type gate: a body that is not JSON is invalid input like any other
    if (err.status === 415)
      return new AppError(400, ERROR_CODE.validationFailed, 'The request body must be application/json');
    if (err.status === 401)
      return new AppError(401, ERROR_CODE.unauthenticated, err.message || 'Unauthenticated');
    if (err.status === 403) return new AppError(403, ERROR_CODE.forbidden, err.message || 'Forbidden');
    return null;
  }
  const cause = (err as { cause?: unknown })?.cause;
  if (err && typeof err === 'object' && 'code' in err) return fromPostgres(err as PostgresError);
  if (cause && typeof cause === 'object' && 'code' in cause) return fromPostgres(cause as PostgresError);
  return null;
}

export function errorResponse(c: Context, err: unknown, onUnexpected: (err: unknown) => void) {
  const known = toAppError(err);
  if (known) {
    // VALIDATION_FAILED always carries `issues`, also when the input failed before the schema did
    const extra =
      known.code === ERROR_CODE.validationFailed && !('issues' in known.extra)
        ? { issues: [{ path: [], message: known.message }], ...known.extra }
        : known.extra;
    return c.json(errorBody(known.status, known.code, known.message, extra), known.status, known.headers);
  }
  onUnexpected(err);
  return c.json(errorBody(500, ERROR_CODE.internal, 'Unexpected error'), 500);
}
