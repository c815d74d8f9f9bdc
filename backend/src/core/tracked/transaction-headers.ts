import { customAlphabet } from 'nanoid';
import { ID_PATTERN } from '../protocol.ts';

const randomPart = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 12);

/** `{base36 timestamp}-{12 random chars}`: the same form clients use. */
export function createTransactionId(now = Date.now()): string {
  return `${now.toString(36)}-${randomPart()}`;
}

export interface TransactionHeaders {
  transactionId: string;
  clientId: string | null;
  expectedTransactionId: string | null;
}

/** The validated request headers (see the route's header schema) with a server-made id when absent. */
export function resolveTransactionHeaders(headers: {
  'x-transaction-id'?: string | undefined;
  'x-client-id'?: string | undefined;
  'x-expected-transaction-id'?: string | undefined;
}): TransactionHeaders {
  return {
    transactionId: headers['x-transaction-id'] ?? createTransactionId(),
    clientId: headers['x-client-id'] ?? null,
    expectedTransactionId: headers['x-expected-transaction-id'] ?? null,
  };
}

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}
