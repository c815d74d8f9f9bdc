import { customAlphabet } from 'nanoid';
import { HEADER } from '../protocol.ts';

const randomPart = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 12);

/** `{base36 timestamp}-{12 random chars}`: the same form clients use. */
function createTransactionId(now = Date.now()): string {
  return `${now.toString(36)}-${randomPart()}`;
}

export interface TransactionHeaders {
  transactionId: string;
  clientId: string | null;
  expectedTransactionId: string | null;
}

/** The validated request headers (see the route's header schema) with a server-made id when absent. */
export function resolveTransactionHeaders(headers: {
  [HEADER.transactionId]?: string | undefined;
  [HEADER.clientId]?: string | undefined;
  [HEADER.expectedTransactionId]?: string | undefined;
}): TransactionHeaders {
  return {
    transactionId: headers[HEADER.transactionId] ?? createTransactionId(),
    clientId: headers[HEADER.clientId] ?? null,
    expectedTransactionId: headers[HEADER.expectedTransactionId] ?? null,
  };
}
