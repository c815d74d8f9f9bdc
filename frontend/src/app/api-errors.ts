/** Turns what the SDK hands back for a failed call into one sentence for a person. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ErrorBody {
  code?: unknown;
  message?: unknown;
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null;
}

/** Throws an ApiError built from the `{ error, code, message }` body of a failed response. */
export function failure(response: Response | undefined, body: unknown): never {
  const status = response?.status ?? 0;
  if (isErrorBody(body)) {
    const code = typeof body.code === 'string' ? body.code : 'UNKNOWN';
    const message = typeof body.message === 'string' ? body.message : `The server answered ${status}`;
    throw new ApiError(status, code, message);
  }
  throw new ApiError(status, 'UNKNOWN', `The server answered ${status}`);
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return 'The server cannot be reached. Check your connection.';
  return error instanceof Error ? error.message : String(error);
}
