/**
 * What one attempt to send a transaction means for it: a pure function of the answer.
 *
 *   pending ──2xx / X-Idempotent-Hit──────────────► sent ──stream / status──► confirmed
 *      │  ──409 TRANSACTION_CONFLICT|ENTITY_DELETED► conflict
 *      │  ──other 4xx──────────────────────────────► failed (create: later writes of the
 *      │                                                    entity fail with it)
 *      └──no answer, timeout, 5xx, 401, 408, 429,──► pending, retries + 1, after a jittered
 *         409 TRANSACTION_NOT_RECORDED (an undo     backoff (0.5 s · 2^retries, at most 30 s)
 *         of what the worker has not logged yet)
 */
import { CONFLICT_CODES, NETWORK_ERROR, TIMEOUT_ERROR, TXID_HEADER } from './constants.ts';
import type { SyncError } from './types.ts';

export type AttemptOutcome =
  | { kind: 'sent'; serverVersion: Record<string, unknown> | null; serverTxid: string | null }
  | { kind: 'conflict'; serverVersion: Record<string, unknown> | null; error: SyncError }
  | { kind: 'failed'; error: SyncError }
  | { kind: 'retry'; error: SyncError };

/** Statuses a person must wait out rather than fix: the same request may succeed later. */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([401, 408, 425, 429]);
/** Codes of answers that say "not yet": the same request succeeds once the server catches up. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['TRANSACTION_NOT_RECORDED']);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function errorOf(status: number, body: unknown): SyncError {
  const code = isRecord(body) && typeof body.code === 'string' ? body.code : `HTTP_${status}`;
  const message = isRecord(body) && typeof body.message === 'string' ? body.message : `HTTP ${status}`;
  return { code, message, status };
}

/** The outcome of an answer (`response` absent: no answer at all, with `failure` saying why). */
export function outcomeOf(
  answer: { response: Response; body: unknown } | { response: undefined; failure: SyncError },
): AttemptOutcome {
  if (!answer.response) return { kind: 'retry', error: answer.failure };
  const { response, body } = answer;
  if (response.ok) {
    return {
      kind: 'sent',
      serverVersion: isRecord(body) ? body : null,
      serverTxid: response.headers.get(TXID_HEADER),
    };
  }
  const error = errorOf(response.status, body);
  if (response.status === 409 && CONFLICT_CODES.has(error.code)) {
    const serverVersion = isRecord(body) && isRecord(body.serverVersion) ? body.serverVersion : null;
    return { kind: 'conflict', serverVersion, error };
  }
  if (response.status >= 500 || TRANSIENT_STATUSES.has(response.status) || TRANSIENT_CODES.has(error.code))
    return { kind: 'retry', error };
  return { kind: 'failed', error };
}

export const BASE_RETRY_DELAY_MS = 500;
export const MAX_RETRY_DELAY_MS = 30_000;

/** Delay before attempt `retries + 1`: exponential, capped, with jitter in [50%, 100%]. */
export function retryDelay(retries: number, random: number = Math.random()): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, BASE_RETRY_DELAY_MS * 2 ** Math.max(0, retries - 1));
  return Math.round(ceiling * (0.5 + random / 2));
}

/** An attempt whose answer may have been lost is settled by the status endpoint before it is sent again. */
export const needsStatusCheck = (lastError: SyncError | null): boolean =>
  lastError !== null &&
  (lastError.code === NETWORK_ERROR || lastError.code === TIMEOUT_ERROR || (lastError.status ?? 0) >= 500);

export const networkFailure = (message: string, code = NETWORK_ERROR): SyncError => ({ code, message });
