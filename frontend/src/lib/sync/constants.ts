/** Protocol words of the API that the library speaks, in one place. */
export const TRANSACTION_ID_HEADER = 'X-Transaction-Id';
export const CLIENT_ID_HEADER = 'X-Client-Id';
export const EXPECTED_TRANSACTION_HEADER = 'X-Expected-Transaction-Id';
export const TXID_HEADER = 'X-Txid';

/** 409 codes that are a conflict for a person to resolve, not a rejection. */
export const CONFLICT_CODES: ReadonlySet<string> = new Set(['TRANSACTION_CONFLICT', 'ENTITY_DELETED']);

/** Codes the library gives to attempts that got no definite answer, or to cascaded failures. */
export const NETWORK_ERROR = 'NETWORK';
export const TIMEOUT_ERROR = 'TIMEOUT';
export const CASCADE_ERROR = 'CASCADE';

/** SSE event names of the activity stream. */
export const CONNECTED_EVENT = 'connected';
export const ACTIVITY_EVENT = 'activity';
export const COUNTS_EVENT = 'counts';
