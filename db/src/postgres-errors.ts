/**
 * The PostgreSQL error codes (SQLSTATE) this project acts on, named once: the API's error
 * mapping (core/errors.ts) and the CDC worker's retry decisions read them from here.
 */

export const SQLSTATE = {
  stringTooLong: '22001',
  numericOutOfRange: '22003',
  invalidDatetimeFormat: '22007',
  datetimeOverflow: '22008',
  characterNotInRepertoire: '22021',
  invalidTextRepresentation: '22P02',
  untranslatableCharacter: '22P05',
  notNullViolation: '23502',
  foreignKeyViolation: '23503',
  uniqueViolation: '23505',
  checkViolation: '23514',
  tooManyConnections: '53300',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  /** Raised by `sync_reject()` (drizzle/0002_reject_function.sql): a tracked write matched no row. */
  trackedWriteRejected: 'SY409',
} as const;

/** Class 08: connection exceptions. */
const CONNECTION_EXCEPTION_CLASS = '08';

/** SQLSTATEs that mean the value sent was bad, not that the server failed. */
export const INVALID_INPUT_SQLSTATES: ReadonlySet<string> = new Set([
  SQLSTATE.stringTooLong,
  SQLSTATE.numericOutOfRange,
  SQLSTATE.invalidDatetimeFormat,
  SQLSTATE.datetimeOverflow,
  SQLSTATE.characterNotInRepertoire,
  SQLSTATE.invalidTextRepresentation,
  SQLSTATE.untranslatableCharacter,
  SQLSTATE.notNullViolation,
  SQLSTATE.checkViolation,
]);

/** Codes the client libraries (postgres.js, pg) and Node's sockets give a lost connection. */
const CLIENT_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

const SQLSTATE_PATTERN = /^[0-9A-Z]{5}$/;

/** The error's code (an SQLSTATE, or a client library's code), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isSqlState(code: string | undefined): code is string {
  return code !== undefined && SQLSTATE_PATTERN.test(code);
}

/** The server is shutting down, restarting, full, or unreachable: try again later. */
export function isDatabaseUnavailable(code: string | undefined): boolean {
  if (code === undefined) return false;
  return (
    code.startsWith(CONNECTION_EXCEPTION_CLASS) ||
    code === SQLSTATE.adminShutdown ||
    code === SQLSTATE.crashShutdown ||
    code === SQLSTATE.cannotConnectNow ||
    code === SQLSTATE.tooManyConnections ||
    CLIENT_CONNECTION_CODES.has(code)
  );
}
