/** Protocol words of the HTTP contract (docs/API.md), declared once. */

export const HEADER = {
  transactionId: 'x-transaction-id',
  clientId: 'x-client-id',
  expectedTransactionId: 'x-expected-transaction-id',
  idempotentHit: 'x-idempotent-hit',
  txid: 'x-txid',
} as const;

/** Transaction, client and entity ids share one pattern. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;

export const SESSION_COOKIE = 'sync_session';

export const ERROR_CODE = {
  validationFailed: 'VALIDATION_FAILED',
  invalidHeader: 'INVALID_HEADER',
  unauthenticated: 'UNAUTHENTICATED',
  invalidCredentials: 'INVALID_CREDENTIALS',
  forbidden: 'FORBIDDEN',
  csrfRejected: 'CSRF_REJECTED',
  notFound: 'NOT_FOUND',
  emailTaken: 'EMAIL_TAKEN',
  slugTaken: 'SLUG_TAKEN',
  alreadyMember: 'ALREADY_MEMBER',
  lastAdmin: 'LAST_ADMIN',
  idTaken: 'ID_TAKEN',
  transactionConflict: 'TRANSACTION_CONFLICT',
  entityDeleted: 'ENTITY_DELETED',
  transactionIdReused: 'TRANSACTION_ID_REUSED',
  previousValuesNotKept: 'PREVIOUS_VALUES_NOT_KEPT',
  transactionNotRecorded: 'TRANSACTION_NOT_RECORDED',
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  rateLimited: 'RATE_LIMITED',
  serviceUnavailable: 'SERVICE_UNAVAILABLE',
  internal: 'INTERNAL_ERROR',
} as const;

export type ErrorCode = (typeof ERROR_CODE)[keyof typeof ERROR_CODE];
